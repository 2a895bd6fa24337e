//go:build !unix

package main

import "os"

// notifyResize does nothing where terminals send no SIGWINCH: the command's
// terminal keeps the size it started with.
func notifyResize(chan<- os.Signal) {}

func stopResize(chan<- os.Signal) {}
