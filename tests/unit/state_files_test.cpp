// Files the agent writes: explicit modes whatever the umask, atomic
// replacement (issue 15.7).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "state_files.h"

using namespace shunt::agent;

namespace {

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 07777;
  return st.st_mode & 07777;
}

TEST(StateFiles, ModesAreExplicitWhateverTheUmask) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("shunt-state-files-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  const mode_t old = umask(0);
  ASSERT_TRUE(make_private_dirs((dir / "a" / "b").string()));
  ASSERT_TRUE(write_file_atomically((dir / "a" / "b" / "pods.json").string(), "{}\n", 0600));
  umask(old);
  EXPECT_EQ(mode_of((dir / "a").string()), 0700u);
  EXPECT_EQ(mode_of((dir / "a" / "b").string()), 0700u);
  EXPECT_EQ(mode_of((dir / "a" / "b" / "pods.json").string()), 0600u);
  std::filesystem::remove_all(dir);
}

TEST(StateFiles, ReplacementIsWholeAndLeavesNoTemporaryFile) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("shunt-state-replace-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(make_private_dirs(dir.string()));
  const auto file = (dir / "state.json").string();
  ASSERT_TRUE(write_file_atomically(file, "old\n", 0644));
  ASSERT_TRUE(write_file_atomically(file, "new\n", 0600));
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "new\n");
  EXPECT_EQ(mode_of(file), 0600u);
  size_t count = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++count;
  EXPECT_EQ(count, 1u);
  std::filesystem::remove_all(dir);
}

TEST(StateFiles, ALeftoverInPlaceOfTheTemporaryFileIsReplacedNotFollowed) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("shunt-state-link-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(make_private_dirs(dir.string()));
  const auto victim = dir / "victim";
  { std::ofstream(victim) << "keep"; }
  std::filesystem::create_symlink(victim, dir / ".x.shunt-tmp");
  EXPECT_TRUE(write_file_atomically((dir / "x").string(), "data", 0600));
  std::ifstream in(victim);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "keep");
  EXPECT_FALSE(std::filesystem::is_symlink(dir / "x"));
  std::filesystem::remove_all(dir);
}

}  // namespace
