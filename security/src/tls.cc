#include "vigil/security/tls.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/server_builder.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>

#include "vigil/common/logging.h"
#include "vigil/common/text.h"
#include "vigil/security/address.h"
#include "vigil/security/tls_flags.h"

namespace vigil::security {
namespace {

constexpr std::string_view kHowToGetCertificates =
    "create certificates with `vigilctl certs init DIR` and `vigilctl certs issue DIR ROLE NAME`, "
    "then pass --tls-dir";

Result<std::string> ReadPem(const std::string& path, bool secret) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return ErrnoStatus(StatusCode::kNotFound, fmt::format("TLS file '{}'", Escaped(path)), errno);
  }
  if (secret && (st.st_mode & 077) != 0) {
    return PermissionDenied(fmt::format(
        "TLS key '{}' has mode {:04o}: it must not be readable or writable by its group or "
        "others (chmod 600 '{}')",
        Escaped(path), st.st_mode & 07777, Escaped(path)));
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return InvalidArgument(fmt::format("cannot read TLS file '{}'", Escaped(path)));
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return InvalidArgument(fmt::format("TLS file '{}' holds no PEM block", Escaped(path)));
  }
  return text.str();
}

// Plaintext to or on `address`: only with --insecure, and only on loopback.
Status CheckPlaintext(const TlsOptions& o, std::string_view what, std::string_view address) {
  if (!o.insecure) {
    return PermissionDenied(fmt::format(
        "{} '{}' without TLS: no --tls-dir (nor --tls-ca/--tls-cert/--tls-key) was given; {}, "
        "or pass --insecure for plaintext on loopback addresses only",
        what, Escaped(address), kHowToGetCertificates));
  }
  if (!IsLoopback(address)) {
    return PermissionDenied(fmt::format(
        "{} '{}' without TLS (--insecure): plaintext is allowed on loopback addresses only, since "
        "anyone who can reach the port could drive it; {}",
        what, Escaped(address), kHowToGetCertificates));
  }
  return Status::Ok();
}

std::mutex process_mu;
TlsOptions process_tls;

}  // namespace

Result<TlsMaterial> LoadTls(const TlsOptions& o) {
  const auto path = [&](const std::string& explicit_path, const char* file) {
    return !explicit_path.empty() ? explicit_path : o.dir + "/" + file;
  };
  if (o.dir.empty() && (o.ca.empty() || o.cert.empty() || o.key.empty())) {
    return FailedPrecondition(
        fmt::format("no TLS certificates configured: {}", kHowToGetCertificates));
  }
  TlsMaterial m;
  VIGIL_ASSIGN_OR_RETURN(m.ca, ReadPem(path(o.ca, "ca.pem"), false));
  VIGIL_ASSIGN_OR_RETURN(m.cert, ReadPem(path(o.cert, "cert.pem"), false));
  VIGIL_ASSIGN_OR_RETURN(m.key, ReadPem(path(o.key, "key.pem"), true));
  return m;
}

Result<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const TlsOptions& o,
                                                                   std::string_view listen) {
  if (!o.tls()) {
    VIGIL_RETURN_IF_ERROR(CheckPlaintext(o, "listening on", listen));
    return grpc::InsecureServerCredentials();
  }
  VIGIL_ASSIGN_OR_RETURN(TlsMaterial m, LoadTls(o));
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = m.ca;
  ssl.pem_key_cert_pairs.push_back({m.key, m.cert});
  return grpc::SslServerCredentials(ssl);
}

Status AddPort(grpc::ServerBuilder& builder, const TlsOptions& options, const std::string& address,
               int* port, const PortLimits& limits) {
  VIGIL_ASSIGN_OR_RETURN(auto credentials, ServerCredentials(options, address));
  builder.AddListeningPort(address, credentials, port);
  grpc::ResourceQuota quota("vigil-port");
  quota.SetMaxThreads(limits.max_threads);
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(limits.max_message_bytes);
  return Status::Ok();
}

std::string RoleDnsName(Role role) { return fmt::format("{}.{}", RoleName(role), kClusterDnsName); }

Result<std::shared_ptr<grpc::Channel>> Channel(const TlsOptions& o, const std::string& target,
                                               std::optional<Role> server_role,
                                               grpc::ChannelArguments args) {
  if (!o.tls()) {
    VIGIL_RETURN_IF_ERROR(CheckPlaintext(o, "connecting to", target));
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  }
  VIGIL_ASSIGN_OR_RETURN(TlsMaterial m, LoadTls(o));
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = m.ca;
  ssl.pem_private_key = m.key;
  ssl.pem_cert_chain = m.cert;
  args.SetSslTargetNameOverride(server_role ? RoleDnsName(*server_role) : kClusterDnsName);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args);
}

void SetProcessTls(TlsOptions options) {
  std::lock_guard lock(process_mu);
  process_tls = std::move(options);
}

TlsOptions ProcessTls() {
  std::lock_guard lock(process_mu);
  return process_tls;
}

void AddTlsOptions(CLI::App& app, TlsOptions& o) {
  app.add_option("--tls-dir", o.dir,
                 "Directory with ca.pem, cert.pem and key.pem for mutual TLS on every port "
                 "(make them with `vigilctl certs`)");
  app.add_option("--tls-ca", o.ca, "The cluster CA's certificate, instead of TLS_DIR/ca.pem");
  app.add_option("--tls-cert", o.cert, "This process's certificate, instead of TLS_DIR/cert.pem");
  app.add_option("--tls-key", o.key, "Its private key (mode 0600), instead of TLS_DIR/key.pem");
  app.add_flag("--insecure", o.insecure,
               "Plaintext, no authentication: refused on any address but loopback");
}

std::vector<std::string> TlsArgs(const TlsOptions& o) {
  std::vector<std::string> a;
  if (o.insecure) a.push_back("--insecure");
  if (!o.dir.empty()) a.insert(a.end(), {"--tls-dir", o.dir});
  if (!o.ca.empty()) a.insert(a.end(), {"--tls-ca", o.ca});
  if (!o.cert.empty()) a.insert(a.end(), {"--tls-cert", o.cert});
  if (!o.key.empty()) a.insert(a.end(), {"--tls-key", o.key});
  return a;
}

Status UseTlsOptions(const TlsOptions& o) {
  if (o.insecure && (!o.dir.empty() || !o.cert.empty() || !o.key.empty() || !o.ca.empty())) {
    return InvalidArgument("--insecure and the --tls-* options exclude each other");
  }
  if (o.tls()) VIGIL_RETURN_IF_ERROR(LoadTls(o).status());
  SetProcessTls(o);
  return Status::Ok();
}

int UseTlsFlags(const TlsOptions& options) {
  if (Status st = UseTlsOptions(options); !st.ok()) {
    fmt::print(stderr, "error: {}\n", st.message());
    return 2;
  }
  return 0;
}

}  // namespace vigil::security
