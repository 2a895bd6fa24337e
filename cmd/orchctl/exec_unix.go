//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyResize delivers the terminal's resizes (SIGWINCH) to ch.
func notifyResize(ch chan<- os.Signal) { signal.Notify(ch, syscall.SIGWINCH) }

func stopResize(ch chan<- os.Signal) { signal.Stop(ch) }
