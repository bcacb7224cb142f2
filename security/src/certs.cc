#include "vigil/security/certs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>

#include "vigil/common/text.h"
#include "vigil/security/tls.h"

namespace vigil::security {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Bignum = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

// The error OpenSSL queued, with what we were doing.
Status SslError(std::string_view what) {
  const unsigned long e = ERR_get_error();
  char text[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, text, sizeof(text));
  ERR_clear_error();
  return Internal(fmt::format("{}: {}", what, text));
}

Status WriteNew(const std::string& path, const std::string& bytes, mode_t mode) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return FailedPrecondition(fmt::format(
          "'{}' exists: remove it first, or write into another directory", Escaped(path)));
    }
    return ErrnoStatus(StatusCode::kUnavailable, fmt::format("creating '{}'", Escaped(path)),
                       errno);
  }
  const bool ok = fchmod(fd, mode) == 0 &&
                  write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()) &&
                  fsync(fd) == 0;
  const int err = errno;
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    return ErrnoStatus(StatusCode::kUnavailable, fmt::format("writing '{}'", Escaped(path)), err);
  }
  return Status::Ok();
}

// Creates `dir` and its missing parents; `dir` itself, when new, readable by its owner only.
Status MakeDir(const std::string& dir) {
  std::error_code ec;
  const bool made = std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Unavailable(fmt::format("creating '{}': {}", Escaped(dir), ec.message()));
  }
  if (made && chmod(dir.c_str(), 0700) != 0) {
    return ErrnoStatus(StatusCode::kUnavailable, fmt::format("chmod '{}'", Escaped(dir)), errno);
  }
  return Status::Ok();
}

std::string Pem(const std::function<int(BIO*)>& write) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) return {};
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<Key> NewKey() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return SslError("generating an EC P-256 key");
  return key;
}

Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return SslError(fmt::format("certificate extension '{}'", value));
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? Status::Ok() : SslError("adding a certificate extension");
}

// A certificate for `key` named `cn`, valid for `days`, not yet signed. `issuer`: null for a
// self-signed one.
Result<Cert> NewCert(EVP_PKEY* key, const std::string& cn, int days, X509* issuer) {
  Cert cert(X509_new());
  Bignum serial(BN_new());
  if (!cert || !serial || X509_set_version(cert.get(), 2) != 1 ||
      BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400L * days) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return SslError("building a certificate");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name) !=
          1) {
    return SslError("naming a certificate");
  }
  return cert;
}

// "IP:address" or "DNS:name" for a host given on the command line.
Result<std::string> AltName(const std::string& host) {
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return "IP:" + host;
  }
  if (host.empty() || host.size() > 253 ||
      host.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-") !=
          std::string::npos) {
    return InvalidArgument(
        fmt::format("--host '{}' is neither a host name nor an IP address", Escaped(host)));
  }
  return "DNS:" + host;
}

}  // namespace

Status InitCa(const std::string& dir, int days) {
  VIGIL_RETURN_IF_ERROR(MakeDir(dir));
  VIGIL_ASSIGN_OR_RETURN(Key key, NewKey());
  VIGIL_ASSIGN_OR_RETURN(Cert cert, NewCert(key.get(), "vigil cluster CA", days, nullptr));
  VIGIL_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  VIGIL_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  VIGIL_RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return SslError("signing the CA");
  const std::string key_pem = Pem([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  const std::string cert_pem = Pem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); });
  VIGIL_RETURN_IF_ERROR(WriteNew(dir + "/ca-key.pem", key_pem, 0600));
  return WriteNew(dir + "/ca.pem", cert_pem, 0644);
}

Status IssueCertificate(const std::string& ca_dir, const IssueOptions& o,
                        const std::string& out_dir) {
  VIGIL_RETURN_IF_ERROR(CheckIdentityName(o.identity.name));
  if (o.days < 1 || o.days > 36500) {
    return InvalidArgument(fmt::format("--days {} must be in [1, 36500]", o.days));
  }
  TlsOptions ca_files;
  ca_files.ca = ca_files.cert = ca_dir + "/ca.pem";
  ca_files.key = ca_dir + "/ca-key.pem";
  VIGIL_ASSIGN_OR_RETURN(TlsMaterial ca_pem, LoadTls(ca_files));
  Bio cert_bio(BIO_new_mem_buf(ca_pem.cert.data(), static_cast<int>(ca_pem.cert.size())));
  Bio key_bio(BIO_new_mem_buf(ca_pem.key.data(), static_cast<int>(ca_pem.key.size())));
  Cert ca(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  Key ca_key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!ca || !ca_key) return SslError(fmt::format("reading the CA in '{}'", Escaped(ca_dir)));

  VIGIL_ASSIGN_OR_RETURN(Key key, NewKey());
  VIGIL_ASSIGN_OR_RETURN(Cert cert, NewCert(key.get(), o.identity.Uri(), o.days, ca.get()));
  std::string san = fmt::format("URI:{},DNS:{},DNS:{}", o.identity.Uri(), kClusterDnsName,
                                RoleDnsName(o.identity.role));
  for (const std::string& h : o.hosts) {
    VIGIL_ASSIGN_OR_RETURN(std::string alt, AltName(h));
    san += "," + alt;
  }
  VIGIL_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE"));
  VIGIL_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca.get(), NID_key_usage, "critical,digitalSignature"));
  VIGIL_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca.get(), NID_ext_key_usage, "serverAuth,clientAuth"));
  VIGIL_RETURN_IF_ERROR(AddExtension(cert.get(), ca.get(), NID_subject_alt_name, san));
  VIGIL_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca.get(), NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) == 0) {
    return SslError("signing the certificate");
  }
  const std::string key_pem = Pem([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  const std::string cert_pem = Pem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); });
  VIGIL_RETURN_IF_ERROR(MakeDir(out_dir));
  VIGIL_RETURN_IF_ERROR(WriteNew(out_dir + "/key.pem", key_pem, 0600));
  VIGIL_RETURN_IF_ERROR(WriteNew(out_dir + "/cert.pem", cert_pem, 0644));
  return WriteNew(out_dir + "/ca.pem", ca_pem.ca, 0644);
}

Result<Identity> CertificateIdentity(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return InvalidArgument("the certificate is not a PEM X.509 certificate");
  std::vector<std::string> uris;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != GEN_URI) continue;
    const ASN1_IA5STRING* s = n->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<size_t>(ASN1_STRING_length(s)));
  }
  GENERAL_NAMES_free(names);
  const std::vector<std::string_view> views(uris.begin(), uris.end());
  return OneIdentity(views, "the certificate");
}

}  // namespace vigil::security
