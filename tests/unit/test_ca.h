// A throw-away cluster CA for tests: certificates made by vigilctl's code in a temporary
// directory, removed at the end.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "vigil/security/certs.h"
#include "vigil/security/tls.h"

namespace vigil::testing {

class TestCa {
 public:
  TestCa() {
    char tmpl[] = "/tmp/vigil-test-ca-XXXXXX";
    if (mkdtemp(tmpl) != nullptr) dir_ = tmpl;
    status_ = security::InitCa(dir_ + "/ca");
  }
  ~TestCa() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const Status& status() const { return status_; }
  const std::string& dir() const { return dir_; }

  // A certificate for vigil://ROLE/NAME from this CA, or from CA `ca` (made on first use): the
  // TLS options that use it. A failure is kept in status().
  security::TlsOptions Issue(security::Role role, const std::string& name,
                             const std::string& ca = "ca") {
    if (!std::filesystem::exists(dir_ + "/" + ca)) Keep(security::InitCa(dir_ + "/" + ca));
    security::IssueOptions o;
    o.identity = {role, name};
    const std::string out =
        dir_ + "/" + ca + "-" + std::string(security::RoleName(role)) + "-" + name;
    if (!std::filesystem::exists(out)) Keep(security::IssueCertificate(dir_ + "/" + ca, o, out));
    security::TlsOptions t;
    t.dir = out;
    return t;
  }

 private:
  void Keep(Status st) {
    if (status_.ok()) status_ = std::move(st);
  }
  std::string dir_;
  Status status_;
};

}  // namespace vigil::testing
