/**
 * Timer slack for the threads that run tenant scripts (Linux only).
 *
 * isolated-vm enforces every run's time limit with a timer on a thread of its own, and that thread
 * wakes up once per run when the run's deadline passes, even though the run ended long before. At
 * a few thousand runs a second that is a few thousand context switches a second, about a tenth of
 * the proxy process's CPU. Timer slack lets the kernel fire timers up to that much later, so one
 * wake-up handles every deadline that fell within it. systemd's `TimerSlackNSec=` sets the same
 * value for a whole service.
 *
 * The slack is set on the calling thread (Node's main thread) and inherited by every thread it
 * starts afterwards, isolated-vm's timer and worker threads included; threads that already exist
 * keep theirs. It also applies to the main thread's own timed waits, so Node timers may fire up
 * to that much late.
 */
import { writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

/**
 * Sets the main thread's timer slack; 0 leaves the system default. Returns false where it is not
 * set (not Linux, /proc not writable, or called from a worker thread), which changes nothing but
 * speed.
 */
export function setTimerSlack(microseconds: number): boolean {
  if (microseconds === 0 || process.platform !== 'linux' || !isMainThread) return false;
  try {
    // /proc/self is the thread-group leader, which is Node's main thread.
    writeFileSync('/proc/self/timerslack_ns', String(microseconds * 1000));
    return true;
  } catch {
    return false;
  }
}
