// cli/mcp/mcp_command.hpp — the `leaselock mcp` subcommand (an MCP server; see README
// "MCP server").
#pragma once

#include "../commands.hpp"

namespace leaselock::cli {

int mcp_command(const Args& args);  // mcp/mcp_command.cpp

}  // namespace leaselock::cli
