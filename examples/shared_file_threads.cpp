// Worker threads edit one shared file at once — first with no coordination (updates get
// lost: two workers read the same state and the later write wins), then each edit under
// an exclusive lease (RAII guard): none lost. The file carries the fence of the last
// writer, and a writer refuses to write over a newer fence, the way real storage should.
//
// Run: ./shared_file_threads [workers] [edits-per-worker]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <leaselock/leaselock.hpp>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct State {
  long edits = 0;                // how many edits the file has seen
  std::uint64_t last_fence = 0;  // the fence of the lease that wrote it last
};

State load(const fs::path& file) {
  State state;
  std::ifstream in(file);
  std::string word;
  while (in >> word) {
    if (word == "edits") in >> state.edits;
    if (word == "fence") in >> state.last_fence;
  }
  return state;
}

void store(const fs::path& file, const State& state) {
  const fs::path temp = file.string() + ".tmp-" +
                        std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  {
    std::ofstream out(temp, std::ios::trunc);
    out << "edits " << state.edits << "\nfence " << state.last_fence << "\n";
  }
  fs::rename(temp, file);  // whole-file replace: readers never see half a file
}

// One agent's edit: read, think a little, write back one more.
void edit(const fs::path& file, std::uint64_t fence) {
  State state = load(file);
  std::this_thread::sleep_for(50us);                   // the agent "thinks" between read and write
  if (fence != 0 && fence < state.last_fence) return;  // a newer holder wrote: stale, refuse
  state.edits += 1;
  if (fence != 0) state.last_fence = fence;
  store(file, state);
}

long run(const fs::path& file, int workers, int edits, leaselock::local_lock_manager* locks) {
  store(file, State{});
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      const std::string owner = "agent-" + std::to_string(w);
      for (int i = 0; i < edits; ++i) {
        if (!locks) {
          edit(file, 0);
          continue;
        }
        // Exclusive for 10 s; wait as long as it takes. Released at the end of the scope.
        auto lease = locks->acquire(file.string(), leaselock::Mode::exclusive, 10s, owner);
        edit(file, lease.fence());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  return load(file).edits;
}

}  // namespace

int main(int argc, char** argv) {
  const int workers = argc > 1 ? std::atoi(argv[1]) : 8;
  const int edits = argc > 2 ? std::atoi(argv[2]) : 50;
  if (workers < 1 || edits < 1) {
    std::fprintf(stderr, "usage: %s [workers >= 1] [edits-per-worker >= 1]\n", argv[0]);
    return 2;
  }
  const fs::path dir = fs::temp_directory_path() / ("leaselock-demo-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / "state.txt";
  const long expected = static_cast<long>(workers) * edits;

  std::printf("%d agents each make %d edits to %s (expected total: %ld)\n\n", workers, edits,
              file.c_str(), expected);
  const long unguarded = run(file, workers, edits, nullptr);
  std::printf("without leases : %6ld edits kept, %6ld lost\n", unguarded, expected - unguarded);

  leaselock::local_lock_manager locks;
  const long guarded = run(file, workers, edits, &locks);
  std::printf("with leaselock : %6ld edits kept, %6ld lost (last fence %llu)\n", guarded,
              expected - guarded, static_cast<unsigned long long>(load(file).last_fence));
  fs::remove_all(dir);
  return guarded == expected ? 0 : 1;
}
