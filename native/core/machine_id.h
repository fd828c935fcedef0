// Reads the identifiers a machine-bound key is derived from, without spawning a process.
#pragma once
#include <string>

namespace sealed {

// The machine id, whitespace trimmed. Throws Error(kMachineId) naming the fix when there is none.
std::string ReadMachineId();
// The id of the current boot (Linux boot_id, macOS kern.bootsessionuuid). Throws Error(kMachineId).
std::string ReadBootId();
// The OS user id as the HKDF info wants it: decimal euid on POSIX, the user's SID on Windows.
std::string CurrentUid();

// Exposed for the core tests: trims ASCII whitespace and accepts only a 32-hex-digit id.
bool NormalizeLinuxMachineId(const std::string& raw, std::string* out);

}  // namespace sealed
