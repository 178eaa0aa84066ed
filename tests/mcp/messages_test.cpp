// Unit tests of the MCP server's message layer: the JSON writer (against nlohmann's own
// dump) and the sorting of incoming JSON-RPC messages.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>
#include <utility>

#include "../../cli/mcp/json_rpc.hpp"

using leaselock::cli::mcp::classify;
using leaselock::cli::mcp::dump;
using leaselock::cli::mcp::Incoming;
using leaselock::cli::mcp::json;

TEST_CASE("dump writes what json::dump writes") {
  const json values[] = {
      json::parse(R"({"a":1,"b":[true,false,null],"c":{"d":"e"},"f":-7,"g":18446744073709551615})"),
      json::parse(R"({"text":"quote \" backslash \\ newline \n tab \t bell \u0007 del \u007f"})"),
      json::parse(R"(["é", "日本語", "😀", "", [], {}])"),
      json::parse(R"({"progress":0.5,"total":55.0,"big":1e300})"),
  };
  for (const json& value : values) CHECK(dump(value) == value.dump());
}

TEST_CASE("dump replaces each byte that is not UTF-8 with U+FFFD, and the rest is kept") {
  const std::string r = "\xef\xbf\xbd";  // U+FFFD
  const std::pair<std::string, std::string> cases[] = {
      {"a\xff"
       "b",
       "a" + r + "b"},
      {"\xc3", r},                          // a sequence cut short
      {"\xe2\x82", r + r},                  // the same, longer
      {"\xed\xa0\x80", r + r + r},          // a UTF-16 surrogate
      {"\xf4\x90\x80\x80", r + r + r + r},  // over U+10FFFF
      {"ok\xc0\xaf", "ok" + r + r},         // an overlong form
      {"caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80",
       "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80"},  // valid
  };
  for (const auto& [input, expected] : cases) {
    const std::string text = dump(json(input));
    CHECK(json::parse(text) == json(expected));
  }
}

TEST_CASE("classify sorts requests, notifications, responses and invalid messages") {
  CHECK(classify(json::parse(R"({"jsonrpc":"2.0","id":1,"method":"ping"})")).kind ==
        Incoming::Kind::request);
  CHECK(classify(json::parse(R"({"jsonrpc":"2.0","method":"notifications/initialized"})")).kind ==
        Incoming::Kind::notification);
  CHECK(classify(json::parse(R"({"jsonrpc":"2.0","id":"x","result":{}})")).kind ==
        Incoming::Kind::response);
  const char* invalid[] = {
      R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])",            // a batch
      R"({"id":1,"method":"ping"})",                              // no jsonrpc
      R"({"jsonrpc":"2.0","id":null,"method":"ping"})",           // null id
      R"({"jsonrpc":"2.0","id":1,"method":7})",                   // method not a string
      R"({"jsonrpc":"2.0","id":1,"method":"ping","params":[]})",  // params not an object
      R"("just a string")",
  };
  for (const char* text : invalid) {
    const Incoming in = classify(json::parse(text));
    CHECK(in.kind == Incoming::Kind::invalid);
    CHECK(!in.problem.empty());
  }
  const Incoming in =
      classify(json::parse(R"({"jsonrpc":"2.0","id":7,"method":"m","params":{"k":1}})"));
  CHECK(in.id == 7);
  CHECK(in.method == "m");
  CHECK(in.params["k"] == 1);
}
