#ifndef ELBO_STOP_SIGNALS_H
#define ELBO_STOP_SIGNALS_H

/* Preemption signals for the training loop (see ElboTrain/StopSignals.swift).
 *
 * A signal handler may only set a `volatile sig_atomic_t` (C11 7.14.1.1), and Swift cannot
 * declare one, so the handler and its flag live here. */

/* Installs the handler for SIGTERM and SIGUSR1 (SA_RESTART, so MPI's system calls are not
 * interrupted; SA_RESETHAND, so a second signal of the same kind takes the default action and a
 * user can still end a run that does not stop). Returns 0, or -1 if sigaction failed. */
int elbo_stop_signals_install(void);

/* The number of the first stop signal received since install, or 0. */
int elbo_stop_signal_received(void);

#endif
