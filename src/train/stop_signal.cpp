#include "bireco/train/stop_signal.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

namespace bireco::train {
namespace {

volatile sig_atomic_t g_stop_signal = 0;
volatile sig_atomic_t g_save_mode = 0;
// CLOCK_MONOTONIC milliseconds of the first signal, and the repeat window: written before the
// handlers are installed or from the handler itself.
volatile long long g_first_signal_ms = 0;
long long g_repeat_window_ms = static_cast<long long>(kStopRepeatWindowS * 1000);

long long now_ms() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);  // async-signal-safe
  return static_cast<long long>(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}

void say(const char* text, size_t size) { (void)!::write(2, text, size); }

// Only async-signal-safe calls here: clock_gettime(2), write(2) and _exit(2).
void on_stop_signal(int signal) {
  if (g_save_mode == 0) {
    static const char message[] =
        "bireco: stop signal outside the training loop (nothing to save), exiting\n";
    say(message, sizeof message - 1);
    ::_exit(128 + signal);
  }
  if (g_stop_signal == 0) {
    g_first_signal_ms = now_ms();
    g_stop_signal = signal;
    return;
  }
  if (now_ms() - g_first_signal_ms < g_repeat_window_ms) {
    static const char message[] =
        "bireco: stop signal repeated within the repeat window (srun and bireco launch both "
        "deliver it): "
        "still saving once\n";
    say(message, sizeof message - 1);
    return;
  }
  static const char message[] = "bireco: second stop signal, exiting at once (no checkpoint)\n";
  say(message, sizeof message - 1);
  ::_exit(128 + signal);
}

}  // namespace

void install_stop_handlers(double repeat_window_s) {
  g_repeat_window_ms = static_cast<long long>(repeat_window_s * 1000);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  // Both signals are blocked while either handler runs, so two at once still count as two.
  sigaddset(&action.sa_mask, SIGTERM);
  sigaddset(&action.sa_mask, SIGUSR1);
  action.sa_flags = SA_RESTART;  // a signal never turns a read or a collective into EINTR
  for (int signal : {SIGTERM, SIGUSR1}) ::sigaction(signal, &action, nullptr);
}

void set_stop_mode(StopMode mode) { g_save_mode = mode == StopMode::kSave ? 1 : 0; }

int stop_requested() { return g_stop_signal; }

void clear_stop_request() { g_stop_signal = 0; }

const char* signal_name(int signal) {
  if (signal == SIGTERM) return "SIGTERM";
  if (signal == SIGUSR1) return "SIGUSR1";
  static thread_local char text[32];
  std::snprintf(text, sizeof text, "signal %d", signal);
  return text;
}

}  // namespace bireco::train
