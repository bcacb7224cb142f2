// TLS for every gRPC port: mutual authentication with certificates issued by the cluster's CA
// (`vigilctl certs`). A server requires and verifies its callers' certificates; a client verifies
// that the server's certificate comes from the same CA and presents its own.
//
// Plaintext is only behind an explicit `insecure` (--insecure), and only on loopback addresses:
// with neither TLS nor `insecure`, every port and channel is refused (the error says how to get
// certificates), and plaintext on or to any other address is refused, naming it.
#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/common/status.h"
#include "vigil/security/address.h"
#include "vigil/security/identity.h"

namespace grpc {
class Channel;
class ServerBuilder;
}  // namespace grpc

namespace vigil::security {

// Every certificate vigilctl (or the Ansible role) issues carries this DNS name and its role's,
// ROLE.vigil.cluster (RoleDnsName). A client that knows which role its server has (a replica
// dialling its voter, a server its store, a voter its nodes...) verifies the server against the
// role's name, so that no other member of the cluster can stand in for it; one that does not,
// against kClusterDnsName (any certificate of the cluster's CA). Servers check their callers'
// roles themselves (permissions.h).
inline constexpr char kClusterDnsName[] = "vigil.cluster";

struct TlsOptions {
  std::string dir;            // holds ca.pem, cert.pem and key.pem
  std::string ca, cert, key;  // each, when set, instead of the file in `dir`
  bool insecure = false;      // plaintext, refused on any address but loopback

  bool configured() const { return insecure || !dir.empty() || !cert.empty(); }
  bool tls() const { return !insecure && configured(); }
};

// The PEM texts of the CA, the certificate and its key.
struct TlsMaterial {
  std::string ca, cert, key;
};

// Reads the three files. A key file readable or writable by its group or others is refused (the
// error names the file and its mode), as is a missing or empty file.
Result<TlsMaterial> LoadTls(const TlsOptions& options);

// Credentials for a server listening on `listen` / a client of `target`. Errors: bad files, no
// TLS and no `insecure`, or `insecure` on an address that is not loopback (the messages say how
// to get certificates).
Result<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const TlsOptions& options,
                                                                   std::string_view listen);
// What every vigil gRPC port allows a caller at most.
struct PortLimits {
  int max_threads = 256;            // handler threads at once (gRPC's thread quota)
  int max_message_bytes = 4 << 20;  // a request's size
};

// Adds a listening port on `address` to `builder`: the credentials of ServerCredentials, and the
// limits (the builder's resource quota). `port` receives the bound port after BuildAndStart.
Status AddPort(grpc::ServerBuilder& builder, const TlsOptions& options, const std::string& address,
               int* port, const PortLimits& limits = {});

// "ROLE.vigil.cluster": the name every certificate of that role carries.
std::string RoleDnsName(Role role);

// A channel to `target`, with `args` (the TLS target name is set here): the server must present
// a certificate of the cluster's CA and, when `server_role` is given, of that role (refused in
// the handshake otherwise: the calls fail UNAVAILABLE).
Result<std::shared_ptr<grpc::Channel>> Channel(const TlsOptions& options, const std::string& target,
                                               std::optional<Role> server_role,
                                               grpc::ChannelArguments args = {});

// The process's own TLS settings (from --tls-dir / --insecure): the default of every
// component's options, so every port it opens and every channel it dials uses them unless a
// component is given others.
void SetProcessTls(TlsOptions options);
TlsOptions ProcessTls();
// A component's TLS setting: its own when set, else the process's as it is when used. (Options
// structs hold it unset by default: a struct made before the flags were parsed still follows
// them.)
using TlsSetting = std::optional<TlsOptions>;
inline TlsOptions OrProcessTls(const TlsSetting& setting) {
  return setting ? *setting : ProcessTls();
}

// --tls-dir, --tls-ca, --tls-cert, --tls-key and --insecure on `app`.
void AddTlsOptions(CLI::App& app, TlsOptions& options);
// The flags that give a child process (a replica the node starts) these options.
std::vector<std::string> TlsArgs(const TlsOptions& options);
// After parsing: reads the files once (a bad or exposed key fails at start-up, not at the first
// call) and makes the options the process's.
Status UseTlsOptions(const TlsOptions& options);

}  // namespace vigil::security
