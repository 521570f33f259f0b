// Files and folders the agent creates, with explicit modes whatever the
// caller's umask, and written so that a crash leaves the old content or the
// new, never a torn file: write beside, fsync, rename, fsync the folder.
#pragma once

#include <sys/types.h>

#include <string>

#include "shunt/error.h"

namespace shunt::agent {

// Creates `dir` and any missing parents with `mode` (existing folders are
// left as they are: /run or /var/lib belong to the system).
Status make_private_dirs(const std::string& dir, mode_t mode = 0700);

// Replaces `path` with `text`, created with `mode`. The temporary file is
// `.NAME.shunt-tmp` beside it, a name no CNI runtime or reader looks at.
Status write_file_atomically(const std::string& path, const std::string& text, mode_t mode);

}  // namespace shunt::agent
