// Pre-emption: SIGTERM and SIGUSR1 (SLURM's warning signal, `--signal=USR1@T`) ask the training
// loop to stop cleanly: every rank finishes its step, step-<N>/ is saved, and the process exits
// 0 (`--resume auto` continues from there).
//
// What a signal does depends on where the process is (StopMode):
//   - before the training loop (start-up, rendezvous, loading) and after the stop's save there
//     is nothing to save: the process ends at once with status 128 + signal;
//   - in the training loop the first signal arms the checkpoint. Under `srun` + `bireco launch`
//     every worker gets the step's SIGTERM and the launcher's forwarded copy milliseconds apart:
//     a repeat within the repeat window (5 s) is the same request and is only noted. A signal
//     after the window ends the process at once with status 128 + signal (no checkpoint).
//
// Nothing is installed implicitly: `bireco train` calls install_stop_handlers(); a library user
// who wants the same calls it too. Without it stop_requested() stays 0.
#pragma once

namespace bireco::train {

// How long after the first stop signal a repeat counts as the same request (srun signals every
// process of the step and `bireco launch` forwards its own copy; both arrive within
// milliseconds, while a user who means "now" sends again after seconds).
constexpr double kStopRepeatWindowS = 5.0;

enum class StopMode {
  kExit,  // nothing to save: a stop signal ends the process at once (the mode after install)
  kSave,  // in the training loop: the first signal asks for a checkpoint (see above)
};

// Installs the handlers for SIGTERM and SIGUSR1 (async-signal-safe: they set a flag or call
// _exit) in StopMode::kExit. `repeat_window_s`: see kStopRepeatWindowS. Idempotent.
void install_stop_handlers(double repeat_window_s = kStopRepeatWindowS);

// Switches the mode (Trainer::train: kSave while it steps, kExit once the stop's checkpoint is
// saved). A signal received in kSave mode stays requested after a switch to kExit.
void set_stop_mode(StopMode mode);

// The first stop signal received (SIGTERM or SIGUSR1), or 0 when none.
int stop_requested();

// Forgets a received signal (tests running several trainers in one process).
void clear_stop_request();

// "SIGTERM", "SIGUSR1", or "signal N".
const char* signal_name(int signal);

}  // namespace bireco::train
