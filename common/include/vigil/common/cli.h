// Shared command-line conventions for every vigil binary (CLI11): --help, --version, --log-level,
// and a process-wide shutdown flag set by SIGINT/SIGTERM so daemons and benchmarks stop
// gracefully.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace vigil::cli {

struct CommonOptions {
  std::string log_level = "info";
};

// Adds --log-level and --version to `app`.
void AddCommonOptions(CLI::App& app, CommonOptions& options);
// "vigil 0.1.0 (commit 0123456789ab)": what --version prints.
std::string VersionText();

// Parses argv, applies the common options, installs the SIGINT/SIGTERM handler and runs `body`.
// Returns the process exit code: body's result, 2 for usage errors (message on stderr), 1 when
// body throws.
int Run(CLI::App& app, CommonOptions& options, int argc, char** argv,
        const std::function<int()>& body);

// A check for names that peers receive and log (--name): 1..`max` printable ASCII characters.
CLI::Validator PrintableName(size_t max);

// For binaries that run a program (vigil-run, vigil-replica --workload exec): the arguments after
// the first "--", removed from argc (CLI11 would take a "--" that follows a vector option as the
// end of that option and then parse the program's own flags).
std::vector<std::string> TakeProgramArguments(int& argc, char** argv);

// True once SIGINT or SIGTERM arrived. Cheap (one relaxed atomic load): fine in polling loops.
bool ShutdownRequested();

}  // namespace vigil::cli
