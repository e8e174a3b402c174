#include "bireco/train/stop_signal.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>

namespace bireco::train {
namespace {

volatile sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int signal) {
  if (g_stop_signal != 0) {
    // Only async-signal-safe calls here: write(2) and _exit(2).
    static const char message[] = "bireco: second stop signal, exiting at once (no checkpoint)\n";
    (void)!::write(2, message, sizeof message - 1);
    ::_exit(128 + signal);
  }
  g_stop_signal = signal;
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  // Both signals are blocked while either handler runs, so two at once still count as two.
  sigaddset(&action.sa_mask, SIGTERM);
  sigaddset(&action.sa_mask, SIGUSR1);
  action.sa_flags = SA_RESTART;  // a signal never turns a read or a collective into EINTR
  for (int signal : {SIGTERM, SIGUSR1}) ::sigaction(signal, &action, nullptr);
}

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
