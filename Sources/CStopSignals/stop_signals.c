#include "stop_signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received = 0;

static void on_stop_signal(int sig) {
  if (received == 0) received = sig;
}

int elbo_stop_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART | SA_RESETHAND;
  received = 0;
  if (sigaction(SIGTERM, &sa, 0) != 0) return -1;
  if (sigaction(SIGUSR1, &sa, 0) != 0) return -1;
  return 0;
}

int elbo_stop_signal_received(void) { return received; }
