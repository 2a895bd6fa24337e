package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"orch.dev/orch/internal/version"
)

func (s *session) versionCommand() *cli.Command {
	return &cli.Command{
		Name:   "version",
		Usage:  "print the client's and the server's versions",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "client", Usage: "only the client's version; do not contact the server"}},
		Action: s.version,
	}
}

// version prints the client version first, so it is there even when the
// server cannot be reached, which is when people ask for it.
func (s *session) version(c *cli.Context) error {
	fmt.Fprintf(s.stdout, "Client Version: %s (%s, API %s)\n", version.Version, version.Platform(), version.GitVersion())
	if c.Bool("client") {
		return nil
	}
	cn, err := s.connect(c)
	if err != nil {
		return err
	}
	info, err := cn.discovery.ServerVersionWithContext(c.Context)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.stdout, "Server Version: %s (%s)\n", info.GitVersion, info.Platform)
	return nil
}
