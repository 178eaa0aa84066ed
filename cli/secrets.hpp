// cli/secrets.hpp — keeping the password of a PostgreSQL connection string out of messages.
//
// libpq repeats a connection string it cannot parse in its error message, password and
// all. Every message about PostgreSQL storage goes through ConnectionSecrets::hide()
// before it is printed or returned to a client.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#if LEASELOCK_CLI_POSTGRES
#include <libpq-fe.h>
#endif

namespace leaselock::cli {

/// Every spelling of the password a connection string carries: `postgresql://user:PW@host`
/// (raw and percent-decoded), `?password=PW`, `password=PW` or `password='P W'`, and what
/// libpq itself reads as the password.
class ConnectionSecrets {
 public:
  /// `conninfo` empty: no secrets (and libpq is not loaded).
  explicit ConnectionSecrets(const std::string& conninfo) {
    if (conninfo.empty()) return;
#if LEASELOCK_CLI_POSTGRES
    char* error = nullptr;
    if (PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error)) {
      for (const PQconninfoOption* option = options; option->keyword; ++option)
        if (std::string_view(option->keyword) == "password" && option->val) add(option->val);
      PQconninfoFree(options);
    }
    if (error) PQfreemem(error);
#endif
    // The user information of a URL (or of a string that was meant to be one).
    const std::size_t scheme = conninfo.find("://");
    const std::size_t start = scheme == std::string::npos ? 0 : scheme + 3;
    const std::size_t at = conninfo.rfind('@');
    if (at != std::string::npos && at > start) {
      const std::size_t colon = conninfo.find(':', start);
      if (colon != std::string::npos && colon < at) add(conninfo.substr(colon + 1, at - colon - 1));
    }
    // password=VALUE in a URL's query or a keyword string, quoted or not.
    for (std::size_t found = conninfo.find("password"); found != std::string::npos;
         found = conninfo.find("password", found + 1)) {
      std::size_t i = found + 8;
      while (i < conninfo.size() && conninfo[i] == ' ') ++i;
      if (i >= conninfo.size() || conninfo[i] != '=') continue;
      ++i;
      while (i < conninfo.size() && conninfo[i] == ' ') ++i;
      std::size_t end = i;
      if (end < conninfo.size() && conninfo[end] == '\'') {
        ++i;
        end = i;
        while (end < conninfo.size() && conninfo[end] != '\'')
          end += conninfo[end] == '\\' ? std::size_t{2} : std::size_t{1};
      } else {
        while (end < conninfo.size() && conninfo[end] != ' ' && conninfo[end] != '&') ++end;
      }
      add(conninfo.substr(i, std::min(end, conninfo.size()) - i));
    }
    std::sort(secrets_.begin(), secrets_.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  }

  /// `message` on one line (libpq's multi-line messages joined with "; "), with every
  /// spelling of the password replaced by "********".
  std::string hide(std::string message) const {
    std::string line;
    for (std::size_t i = 0; i < message.size(); ++i) {
      if (message[i] != '\n') {
        line += message[i];
        continue;
      }
      while (i + 1 < message.size() && std::isspace(static_cast<unsigned char>(message[i + 1])))
        ++i;
      if (i + 1 < message.size()) line += "; ";
    }
    for (const std::string& secret : secrets_) {
      for (std::size_t found = line.find(secret); found != std::string::npos;
           found = line.find(secret, found + kMask.size()))
        line.replace(found, secret.size(), kMask);
    }
    return line;
  }

 private:
  static constexpr std::string_view kMask = "********";

  void add(const std::string& secret) {
    if (secret.empty()) return;
    secrets_.push_back(secret);
    const std::string decoded = percent_decoded(secret);
    if (decoded != secret && !decoded.empty()) secrets_.push_back(decoded);
  }

  static std::string percent_decoded(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '%' && i + 2 < text.size() &&
          std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
        out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  }

  std::vector<std::string> secrets_;
};

}  // namespace leaselock::cli
