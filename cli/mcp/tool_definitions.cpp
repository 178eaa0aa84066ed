// cli/mcp/tool_definitions.cpp — what tools/list says about each tool: the description an
// agent reads to decide when and how to call it, inputSchema, outputSchema, annotations.
#include "tools.hpp"

namespace leaselock::cli::mcp {

namespace {

json string_property(const char* description) {
  return json{{"type", "string"}, {"description", description}};
}

json holder_schema() {
  return json{
      {"type", "object"},
      {"description", "One current holder (its lock_id is never shown)."},
      {"properties",
       {{"owner", string_property("Who holds it (the owner given to lock_file).")},
        {"mode", {{"type", "string"}, {"enum", {"read", "write"}}}},
        {"fence", {{"type", "integer"}, {"description", "The holder's fencing number."}}},
        {"acquired_at", string_property("RFC 3339 UTC time of the grant.")},
        {"expires_at", string_property("RFC 3339 UTC time the lease ends unless renewed.")},
        {"expires_in_ms", {{"type", "integer"}, {"minimum", 0}}}}},
      {"required", {"owner", "mode", "fence", "acquired_at", "expires_at", "expires_in_ms"}}};
}

json status_schema() {
  return json{
      {"type", "object"},
      {"properties",
       {{"path", {{"type", "string"}}},
        {"locked", {{"type", "boolean"}}},
        {"mode",
         {{"type", {"string", "null"}},
          {"enum", {"read", "write", nullptr}},
          {"description", "write if a writer holds it, read if only readers, null if free."}}},
        {"holders", {{"type", "array"}, {"items", holder_schema()}}},
        {"waiters", {{"type", "integer"}, {"minimum", 0}}}}},
      {"required", {"path", "locked", "mode", "holders", "waiters"}}};
}

json path_property() {
  return string_property(
      "The file's path, used as the lock's name: every agent must spell a file the same "
      "way (use absolute paths). The file itself is never opened.");
}

json lock_id_property() {
  return string_property("The lock_id that lock_file returned (32 hex digits).");
}

json lock_file_tool() {
  return json{
      {"name", "lock_file"},
      {"title", "Lock a file"},
      {"description",
       "Take a lock on a file before you edit it, so that other agents sharing this "
       "machine do not overwrite your changes (or you theirs). Use mode \"write\" (the "
       "default) to change the file, \"read\" to read it while keeping writers out (many "
       "readers may hold it at once). Give ttl_seconds long enough for your edit: the lock "
       "ends by itself when it runs out, even if you never unlock it (extend it with "
       "renew_lock). Keep the returned lock_id: unlock_file and renew_lock need it. If "
       "acquired is false, someone else holds the file: holders says who and until when; "
       "do not edit it, but retry after retry_after_ms, or call again with wait_seconds "
       "(up to 55) to wait for it. Read the file only after you hold the lock, and call "
       "unlock_file as soon as you are done."},
      {"inputSchema",
       {{"type", "object"},
        {"properties",
         {{"path", path_property()},
          {"mode",
           {{"type", "string"},
            {"enum", {"write", "read", "exclusive", "shared"}},
            {"default", "write"},
            {"description",
             "write: one holder, to change the file. read: shared with other readers. "
             "(exclusive and shared are accepted as synonyms.)"}}},
          {"ttl_seconds",
           {{"type", "number"},
            {"exclusiveMinimum", 0},
            {"description", "How long the lock lasts unless renewed or unlocked, e.g. 60."}}},
          {"wait_seconds",
           {{"type", "number"},
            {"minimum", 0},
            {"default", 0},
            {"description",
             "How long to wait if the file is locked; 0 (the default) tries once. At most 55: "
             "longer waits are shortened to 55."}}},
          {"owner",
           string_property("Your name as other agents will see it in holders (optional).")}}},
        {"required", {"path", "ttl_seconds"}}}},
      {"outputSchema",
       {{"type", "object"},
        {"properties",
         {{"path", {{"type", "string"}}},
          {"acquired", {{"type", "boolean"}}},
          {"lock_id", string_property("Present when acquired: pass it to unlock_file.")},
          {"fence",
           {{"type", "integer"},
            {"description",
             "Present when acquired: grows with every grant on this path; storage that "
             "records it can refuse a write from an older, expired holder."}}},
          {"mode", {{"type", "string"}, {"enum", {"read", "write"}}}},
          {"expires_at", {{"type", "string"}}},
          {"expires_in_ms", {{"type", "integer"}, {"minimum", 0}}},
          {"holders", {{"type", "array"}, {"items", holder_schema()}}},
          {"waiters", {{"type", "integer"}, {"minimum", 0}}},
          {"retry_after_ms",
           {{"type", "integer"},
            {"minimum", 0},
            {"description", "When not acquired: when the current holders' leases end."}}}}},
        {"required", {"path", "acquired"}}}},
      {"annotations",
       {{"title", "Lock a file"},
        {"destructiveHint", false},
        {"idempotentHint", false},
        {"openWorldHint", false}}}};
}

json unlock_file_tool() {
  return json{
      {"name", "unlock_file"},
      {"title", "Unlock a file"},
      {"description",
       "Release the lock lock_file gave you, as soon as you have finished with the file, so "
       "that others can take it. Pass the same path and the lock_id. released true: done. "
       "If the lock had already ended (its TTL ran out, or it was released), the result is "
       "an error with released false: another agent may have changed the file since, so "
       "re-read it before relying on your edit."},
      {"inputSchema",
       {{"type", "object"},
        {"properties", {{"path", path_property()}, {"lock_id", lock_id_property()}}},
        {"required", {"path", "lock_id"}}}},
      {"outputSchema",
       {{"type", "object"},
        {"properties", {{"path", {{"type", "string"}}}, {"released", {{"type", "boolean"}}}}},
        {"required", {"path", "released"}}}},
      {"annotations",
       {{"title", "Unlock a file"},
        {"destructiveHint", false},
        {"idempotentHint", true},
        {"openWorldHint", false}}}};
}

json renew_lock_tool() {
  return json{{"name", "renew_lock"},
              {"title", "Extend a lock"},
              {"description",
               "Extend a lock you hold to ttl_seconds from now, when your work takes longer than "
               "the TTL you asked for. Renew before it runs out: a lock that has ended cannot be "
               "renewed (the result is then an error with renewed false; take a new lock with "
               "lock_file and re-read the file)."},
              {"inputSchema",
               {{"type", "object"},
                {"properties",
                 {{"path", path_property()},
                  {"lock_id", lock_id_property()},
                  {"ttl_seconds",
                   {{"type", "number"},
                    {"exclusiveMinimum", 0},
                    {"description", "The new time to live, from now."}}}}},
                {"required", {"path", "lock_id", "ttl_seconds"}}}},
              {"outputSchema",
               {{"type", "object"},
                {"properties",
                 {{"path", {{"type", "string"}}},
                  {"renewed", {{"type", "boolean"}}},
                  {"expires_at", {{"type", "string"}}},
                  {"expires_in_ms", {{"type", "integer"}, {"minimum", 0}}}}},
                {"required", {"path", "renewed"}}}},
              {"annotations",
               {{"title", "Extend a lock"},
                {"destructiveHint", false},
                {"idempotentHint", false},
                {"openWorldHint", false}}}};
}

json check_lock_status_tool() {
  return json{
      {"name", "check_lock_status"},
      {"title", "Who holds a file"},
      {"description",
       "See whether a file is locked, by whom, in which mode and until when, without "
       "taking it. To edit a file, call lock_file instead: a status can change the moment "
       "after you read it."},
      {"inputSchema",
       {{"type", "object"}, {"properties", {{"path", path_property()}}}, {"required", {"path"}}}},
      {"outputSchema", status_schema()},
      {"annotations",
       {{"title", "Who holds a file"},
        {"readOnlyHint", true},
        {"idempotentHint", true},
        {"openWorldHint", false}}}};
}

json list_locks_tool() {
  return json{
      {"name", "list_locks"},
      {"title", "List locked files"},
      {"description",
       "List every file locked now (optionally only paths starting with prefix, e.g. a "
       "project directory), with holders and expiry, e.g. to see what other agents are "
       "working on."},
      {"inputSchema",
       {{"type", "object"},
        {"properties",
         {{"prefix", string_property("Only paths that start with this string (optional).")}}}}},
      {"outputSchema",
       {{"type", "object"},
        {"properties", {{"locks", {{"type", "array"}, {"items", status_schema()}}}}},
        {"required", {"locks"}}}},
      {"annotations",
       {{"title", "List locked files"},
        {"readOnlyHint", true},
        {"idempotentHint", true},
        {"openWorldHint", false}}}};
}

}  // namespace

const json& LockTools::definitions() {
  static const json tools = json::array({lock_file_tool(), unlock_file_tool(), renew_lock_tool(),
                                         check_lock_status_tool(), list_locks_tool()});
  return tools;
}

}  // namespace leaselock::cli::mcp
