// Windows-only pieces of the private-file layer that tests look at directly: the security
// descriptors we create files and directories with, in SDDL form, and the descriptor an
// existing path carries. The layer itself has the PrivateDir/FileLock interface of
// private_dir.h (implemented in private_dir_win.cc).
#pragma once
#ifdef _WIN32
#include <string>

namespace sealed {
namespace win {

// "O:<user SID>D:P(A;OICI;FA;;;<user SID>)" for a directory (the ACE is inherited by what is
// created inside), "O:<user SID>D:P(A;;FA;;;<user SID>)" for a file: owned by the current
// user, only the current user has access, nothing inherited from the parent (P).
std::string PrivateSddl(bool directory);

// Owner and DACL of an existing file or directory (not following a reparse point), as SDDL.
std::string SddlOfPath(const std::string& path);

}  // namespace win
}  // namespace sealed
#endif
