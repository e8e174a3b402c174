// The worker supervisor behind `bireco launch`: fork + exec, one poll loop over every
// worker's stdout/stderr pipes and a self-pipe that carries signals.
#include "bireco/distributed/launch.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "bireco/util/error.h"

extern char** environ;

namespace bireco::distributed {
namespace {

using Clock = std::chrono::steady_clock;

int g_signal_pipe[2] = {-1, -1};

void on_signal(int signal) {
  const unsigned char byte = static_cast<unsigned char>(signal);
  const int saved = errno;
  (void)!::write(g_signal_pipe[1], &byte, 1);
  errno = saved;
}

struct Stream {
  int fd = -1;
  int target = 1;  // our stdout or stderr
  std::string pending;
};

struct Worker {
  int rank = 0;
  pid_t pid = -1;
  bool running = true;
  int status = 0;
  Stream out, err;
};

// Writes every complete line of `stream` (all of it at EOF) with the rank prefix, one
// write() per line so that ranks never interleave within a line.
void emit_lines(Stream& stream, const std::string& prefix, bool at_eof) {
  size_t start = 0;
  for (size_t nl; (nl = stream.pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    const std::string line = prefix + stream.pending.substr(start, nl - start + 1);
    (void)!::write(stream.target, line.data(), line.size());
  }
  stream.pending.erase(0, start);
  if (at_eof && !stream.pending.empty()) {
    const std::string line = prefix + stream.pending + "\n";
    (void)!::write(stream.target, line.data(), line.size());
    stream.pending.clear();
  }
}

void drain(Stream& stream, const std::string& prefix) {
  char buffer[65536];
  const ssize_t n = ::read(stream.fd, buffer, sizeof buffer);
  if (n > 0) {
    stream.pending.append(buffer, static_cast<size_t>(n));
    emit_lines(stream, prefix, false);
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    emit_lines(stream, prefix, true);
    ::close(stream.fd);
    stream.fd = -1;
  }
}

void validate(const LaunchOptions& o) {
  if (o.nproc_per_node < 1) throw Error("launch: --nproc-per-node must be at least 1");
  if (o.nnodes < 1) throw Error("launch: --nnodes must be at least 1");
  if (o.node_rank < 0 || o.node_rank >= o.nnodes) {
    throw Error("launch: --node-rank " + std::to_string(o.node_rank) + " is outside 0.." +
                std::to_string(o.nnodes - 1));
  }
  if (o.master_port < 1 || o.master_port > 65535) {
    throw Error("launch: --master-port " + std::to_string(o.master_port) + " is not a TCP port");
  }
  if (o.command.empty()) throw Error("launch: no command after --");
}

// argv and envp for local worker `local`, built before fork (no allocation in the child).
struct Exec {
  std::string program;
  std::vector<std::string> args, env;
};

Exec exec_for(const LaunchOptions& o, int local) {
  Exec e;
  const bool external = o.command[0].find('/') != std::string::npos;
  e.program = external ? o.command[0] : "/proc/self/exe";
  e.args = o.command;
  if (!external) e.args.insert(e.args.begin(), "bireco");
  const std::vector<std::pair<std::string, std::string>> vars = {
      {"RANK", std::to_string(o.node_rank * o.nproc_per_node + local)},
      {"WORLD_SIZE", std::to_string(o.nnodes * o.nproc_per_node)},
      {"LOCAL_RANK", std::to_string(local)},
      {"LOCAL_WORLD_SIZE", std::to_string(o.nproc_per_node)},
      {"MASTER_ADDR", o.master_addr},
      {"MASTER_PORT", std::to_string(o.master_port)}};
  const bool set_omp = o.nproc_per_node > 1 && std::getenv("OMP_NUM_THREADS") == nullptr;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const std::string name = text.substr(0, text.find('='));
    bool replaced = false;
    for (const auto& var : vars) replaced = replaced || var.first == name;
    if (!replaced) e.env.push_back(text);
  }
  for (const auto& var : vars) e.env.push_back(var.first + "=" + var.second);
  if (set_omp) e.env.push_back("OMP_NUM_THREADS=1");
  return e;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int exit_status(int raw) { return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw); }

// To each worker's process group: whatever a worker started itself (a shell's children) gets
// the signal too, and a SIGKILL leaves no orphan holding our pipes.
void signal_all(std::vector<Worker>& workers, int signal) {
  for (auto& w : workers) {
    if (w.running) ::kill(-w.pid, signal);
  }
}

}  // namespace

int launch(const LaunchOptions& o) {
  validate(o);
  if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) throw Error("launch: pipe() failed");
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  for (int signal : {SIGINT, SIGTERM, SIGUSR1}) ::sigaction(signal, &action, nullptr);

  std::vector<Worker> workers(static_cast<size_t>(o.nproc_per_node));
  for (int local = 0; local < o.nproc_per_node; ++local) {
    Worker& w = workers[static_cast<size_t>(local)];
    w.rank = o.node_rank * o.nproc_per_node + local;
    Exec e = exec_for(o, local);
    auto argv = c_strings(e.args);
    auto envp = c_strings(e.env);
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw Error("launch: pipe() failed");
    const pid_t parent = ::getpid();
    w.pid = ::fork();
    if (w.pid < 0) throw Error("launch: fork() failed: " + std::string(std::strerror(errno)));
    if (w.pid == 0) {
      // The worker: own process group (a terminal's Ctrl-C reaches it once, through us), dies
      // with the launcher, stdin from /dev/null, output into our pipes.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(128 + SIGKILL);
      for (int signal : {SIGINT, SIGTERM, SIGUSR1}) ::signal(signal, SIG_DFL);
      const int null_fd = ::open("/dev/null", O_RDONLY);
      ::dup2(null_fd, 0);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      ::execve(e.program.c_str(), argv.data(), envp.data());
      const std::string message = "launch: cannot run " + e.program + ": " + std::strerror(errno) + "\n";
      (void)!::write(2, message.data(), message.size());
      ::_exit(127);
    }
    ::setpgid(w.pid, w.pid);  // also here: no race with the child's own setpgid
    ::close(out[1]);
    ::close(err[1]);
    w.out = {out[0], 1, {}};
    w.err = {err[0], 2, {}};
  }

  int first_failure = 0;
  bool stopping = false;
  Clock::time_point kill_at;
  size_t running = workers.size();
  Clock::time_point all_exited_at;
  while (true) {
    std::vector<pollfd> fds = {{g_signal_pipe[0], POLLIN, 0}};
    std::vector<std::pair<Stream*, int>> owners;
    for (auto& w : workers) {
      for (Stream* s : {&w.out, &w.err}) {
        if (s->fd >= 0) {
          fds.push_back({s->fd, POLLIN, 0});
          owners.emplace_back(s, w.rank);
        }
      }
    }
    // Done when every worker has exited and its pipes are closed (or, if a grandchild holds
    // them open, a second after the last exit).
    if (running == 0 && (owners.empty() || Clock::now() - all_exited_at > std::chrono::seconds(1))) break;
    const int ready = ::poll(fds.data(), fds.size(), 100);
    if (ready > 0) {
      if (fds[0].revents & POLLIN) {
        unsigned char signal;
        while (::read(g_signal_pipe[0], &signal, 1) == 1) {
          signal_all(workers, signal);
          // SIGTERM and SIGUSR1 ask bireco workers to finish the step and save a checkpoint,
          // which may outlast the grace period: no SIGKILL follows them (SLURM kills after its
          // KillWait). Under srun the workers also get the step's own copy: they take a repeat
          // within seconds as the same request (train/stop_signal.h).
          if (signal == SIGINT && !stopping) {
            stopping = true;
            kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.grace_s * 1000));
          }
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
          drain(*owners[i - 1].first, "[rank " + std::to_string(owners[i - 1].second) + "] ");
        }
      }
    }
    for (auto& w : workers) {
      int raw = 0;
      if (w.running && ::waitpid(w.pid, &raw, WNOHANG) == w.pid) {
        w.running = false;
        w.status = exit_status(raw);
        if (--running == 0) all_exited_at = Clock::now();
        if (w.status != 0 && first_failure == 0) {
          first_failure = w.status;
          if (!stopping) {
            std::string note = "launch: rank " + std::to_string(w.rank) + " exited with status " +
                               std::to_string(w.status) + "; stopping the other workers\n";
            (void)!::write(2, note.data(), note.size());
            signal_all(workers, SIGTERM);
            stopping = true;
            kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.grace_s * 1000));
          }
        }
      }
    }
    if (stopping && running > 0 && Clock::now() >= kill_at) signal_all(workers, SIGKILL);
  }
  for (auto& w : workers) {
    for (Stream* s : {&w.out, &w.err}) {
      if (s->fd >= 0) {
        emit_lines(*s, "[rank " + std::to_string(w.rank) + "] ", true);
        ::close(s->fd);
      }
    }
  }
  for (int signal : {SIGINT, SIGTERM, SIGUSR1}) ::signal(signal, SIG_DFL);
  ::close(g_signal_pipe[0]);
  ::close(g_signal_pipe[1]);
  return first_failure;
}

}  // namespace bireco::distributed
