// Runs a shell command and captures what it prints, for tests that drive the `rag` binary.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace rag::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout (stderr too when the command redirects it)
};

// `command` runs under /bin/sh; add "2>&1" to capture stderr.
inline CommandResult RunCommand(const std::string& command, const std::string& stdin_text = "") {
  CommandResult r;
  std::string full = command;
  std::string input_file;
  if (!stdin_text.empty()) {
    char tmpl[] = "/tmp/rag-stdin-XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd < 0) return r;
    FILE* f = fdopen(fd, "w");
    std::fwrite(stdin_text.data(), 1, stdin_text.size(), f);
    std::fclose(f);
    input_file = tmpl;
    full = "(" + command + ") < " + input_file;
  }
  FILE* pipe = popen(full.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (!input_file.empty()) std::remove(input_file.c_str());
  return r;
}

// Single-quotes a string for /bin/sh.
inline std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace rag::testing
