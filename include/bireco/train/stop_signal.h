// Pre-emption: SIGTERM and SIGUSR1 (SLURM's warning signal, `--signal=USR1@T`) ask the training
// loop to stop cleanly: every rank finishes its step, step-<N>/ is saved, and the process exits
// 0 (`--resume auto` continues from there). A second signal ends the process at once with
// status 128 + signal.
//
// Nothing is installed implicitly: `bireco train` calls install_stop_handlers(); a library user
// who wants the same calls it too. Without it stop_requested() stays 0.
#pragma once

namespace bireco::train {

// Installs the handlers for SIGTERM and SIGUSR1 (async-signal-safe: they set a flag; the
// second one calls _exit). Idempotent.
void install_stop_handlers();

// The first stop signal received (SIGTERM or SIGUSR1), or 0 when none.
int stop_requested();

// Forgets a received signal (tests running several trainers in one process).
void clear_stop_request();

// "SIGTERM", "SIGUSR1", or "signal N".
const char* signal_name(int signal);

}  // namespace bireco::train
