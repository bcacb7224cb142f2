// The cluster's certificates (`vigilctl certs`), made with OpenSSL's library: a CA, and leaf
// certificates that carry an identity (vigil://ROLE/NAME) for mutual TLS. EC P-256 keys,
// SHA-256 signatures; every key file is written with mode 0600.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "vigil/common/status.h"
#include "vigil/security/identity.h"

namespace vigil::security {

struct IssueOptions {
  Identity identity;
  // Host names and IP addresses the holder serves on, added as subject alternative names
  // besides the cluster name every certificate carries.
  std::vector<std::string> hosts;
  int days = 365;
};

// Creates a CA in `ca_dir` (ca.pem, ca-key.pem). Refuses to overwrite an existing CA.
Status InitCa(const std::string& ca_dir, int days = 3650);

// Issues a certificate for `o.identity` signed by the CA in `ca_dir`, into `out_dir` (created if
// needed): cert.pem, key.pem and a copy of ca.pem, the layout --tls-dir expects.
Status IssueCertificate(const std::string& ca_dir, const IssueOptions& o,
                        const std::string& out_dir);

// The identity a PEM certificate carries (its one vigil://ROLE/NAME URI): how a process learns
// who its own certificate says it is (e.g. the client id a client certificate binds).
Result<Identity> CertificateIdentity(std::string_view pem);

}  // namespace vigil::security
