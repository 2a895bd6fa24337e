package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/rest"
)

// The operator endpoints are plain HTTP paths next to the Kubernetes API.
const (
	raftPeersPath          = "/orch/v1/raft/peers"
	transferLeadershipPath = "/orch/v1/raft/transfer-leadership"
	snapshotPath           = "/orch/v1/snapshot"
	rotateKeyPath          = "/orch/v1/secrets/rotate-key"
)

// raftPeer is one entry of GET /orch/v1/raft/peers.
type raftPeer struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	State   string `json:"state"`
	Voter   bool   `json:"voter"`
}

func (s *session) operatorCommand() *cli.Command {
	return &cli.Command{
		Name:  "operator",
		Usage: "cluster operations: Raft membership, snapshots, the key Secrets are encrypted with",
		Subcommands: []*cli.Command{
			{
				Name:  "raft",
				Usage: "inspect and change the Raft membership of the masters",
				Subcommands: []*cli.Command{
					{
						Name:   "list-peers",
						Usage:  "list the masters in the Raft configuration",
						Flags:  []cli.Flag{outputFlag("output `FORMAT`: table or json")},
						Action: s.listPeers,
					},
					{
						Name:   "transfer-leadership",
						Usage:  "make another master the leader",
						Flags:  []cli.Flag{&cli.StringFlag{Name: "to", Usage: "the `NAME` of the new leader (default: the server picks)"}},
						Action: s.transferLeadership,
					},
					{
						Name:      "remove-peer",
						Usage:     "remove a master from the Raft configuration",
						ArgsUsage: "NAME",
						Action:    s.removePeer,
					},
				},
			},
			{
				Name:  "snapshot",
				Usage: "save or restore the whole cluster state",
				Subcommands: []*cli.Command{
					{Name: "save", Usage: "write a snapshot of the cluster state to FILE", ArgsUsage: "FILE", Action: s.saveSnapshot},
					{Name: "restore", Usage: "replace the cluster state with the snapshot in FILE", ArgsUsage: "FILE", Action: s.restoreSnapshot},
				},
			},
			{
				Name:  "secrets",
				Usage: "manage the encryption of Secrets at rest",
				Subcommands: []*cli.Command{
					{Name: "rotate-key", Usage: "make a new data key, re-encrypt every Secret with it and retire the old key", Action: s.rotateSecretKey},
				},
			},
		},
	}
}

// operatorClient is a REST client for the operator paths (AbsPath).
func (s *session) operatorClient(c *cli.Context) (rest.Interface, error) {
	cn, err := s.connect(c)
	if err != nil {
		return nil, err
	}
	return cn.clientset.CoreV1().RESTClient(), nil
}

func (s *session) listPeers(c *cli.Context) error {
	format := c.String("output")
	switch format {
	case "", "table", "json":
	default:
		return fmt.Errorf("--output %q: want table or json", format)
	}
	if c.NArg() > 0 {
		return errors.New("list-peers takes no arguments")
	}
	rc, err := s.operatorClient(c)
	if err != nil {
		return err
	}
	raw, err := doRaw(rc.Get().AbsPath(raftPeersPath).Do(c.Context))
	if err != nil {
		return err
	}
	var peers []raftPeer
	if err := json.Unmarshal(raw, &peers); err != nil {
		return fmt.Errorf("the server's peer list is not what orchctl expects: %w", err)
	}
	if format == "json" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := buf.WriteTo(s.stdout)
		return err
	}
	rows := [][]string{{"NAME", "ADDRESS", "STATE", "VOTER"}}
	for _, p := range peers {
		rows = append(rows, []string{p.Name, p.Address, p.State, strconv.FormatBool(p.Voter)})
	}
	tw := &tableWriter{w: s.stdout}
	return tw.write(rows...)
}

func (s *session) transferLeadership(c *cli.Context) error {
	if c.NArg() > 0 {
		return errors.New("transfer-leadership takes no arguments; name the new leader with --to")
	}
	rc, err := s.operatorClient(c)
	if err != nil {
		return err
	}
	req := rc.Post().AbsPath(transferLeadershipPath)
	if to := c.String("to"); to != "" {
		req = req.Param("to", to)
	}
	body, err := doRaw(req.Do(c.Context))
	if err != nil {
		return err
	}
	return s.printServerText(body, "leadership transferred")
}

func (s *session) removePeer(c *cli.Context) error {
	if c.NArg() != 1 || c.Args().First() == "" {
		return errors.New("remove-peer takes one NAME (see orchctl operator raft list-peers)")
	}
	rc, err := s.operatorClient(c)
	if err != nil {
		return err
	}
	name := c.Args().First()
	body, err := doRaw(rc.Delete().AbsPath(raftPeersPath + "/" + url.PathEscape(name)).Do(c.Context))
	if err != nil {
		return err
	}
	return s.printServerText(body, "removed "+name)
}

// doRaw is the body of a response, or the API's own error: Result.Raw
// alone returns a generic error that drops the server's Status message.
func doRaw(res rest.Result) ([]byte, error) {
	if err := res.Error(); err != nil {
		return nil, err
	}
	return res.Raw()
}

// printServerText prints the server's short answer, or def without one.
func (s *session) printServerText(body []byte, def string) error {
	text := strings.TrimSpace(string(body))
	if text == "" {
		text = def
	}
	_, err := fmt.Fprintln(s.stdout, text)
	return err
}

// saveSnapshot streams the snapshot into a temporary file next to FILE and
// renames it into place, so FILE is never a partial snapshot.
func (s *session) saveSnapshot(c *cli.Context) error {
	if c.NArg() != 1 || c.Args().First() == "" {
		return errors.New("snapshot save takes one FILE")
	}
	path := c.Args().First()
	rc, err := s.operatorClient(c)
	if err != nil {
		return err
	}
	stream, err := rc.Get().AbsPath(snapshotPath).SetHeader("Accept", "application/octet-stream").Stream(c.Context)
	if err != nil {
		return err
	}
	defer stream.Close()
	n, err := writeFileAtomic(path, stream)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(s.stdout, "wrote %d bytes to %s\n", n, path)
	return err
}

// writeFileAtomic writes a snapshot to path through a temporary file in
// the same directory, removed again on failure.
func writeFileAtomic(path string, r io.Reader) (n int64, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("snapshot file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			if rmErr := os.Remove(tmp.Name()); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				err = errors.Join(err, rmErr)
			}
		}
	}()
	if n, err = io.Copy(tmp, r); err != nil {
		return n, fmt.Errorf("receiving the snapshot: %w", err)
	}
	if n == 0 {
		return 0, errors.New("the server sent an empty snapshot")
	}
	if err = tmp.Sync(); err != nil {
		return n, fmt.Errorf("snapshot file: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return n, fmt.Errorf("snapshot file: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return n, fmt.Errorf("snapshot file: %w", err)
	}
	return n, nil
}

// rotateSecretKey asks the server to rotate the key Secrets are encrypted
// with at rest; running it again after an interruption finishes the work.
func (s *session) rotateSecretKey(c *cli.Context) error {
	if c.NArg() > 0 {
		return errors.New("rotate-key takes no arguments")
	}
	rc, err := s.operatorClient(c)
	if err != nil {
		return err
	}
	raw, err := doRaw(rc.Post().AbsPath(rotateKeyPath).Do(c.Context))
	if err != nil {
		return err
	}
	var res struct {
		KeyID       string   `json:"keyID"`
		Reencrypted int      `json:"reencrypted"`
		Retired     []string `json:"retired"`
		Resumed     bool     `json:"resumed"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("the server's rotation answer is not what orchctl expects: %w", err)
	}
	what := "rotated"
	if res.Resumed {
		what = "finished an interrupted rotation"
	}
	_, err = fmt.Fprintf(s.stdout, "%s: %d Secrets re-encrypted with key %s", what, res.Reencrypted, res.KeyID)
	if err == nil && len(res.Retired) > 0 {
		_, err = fmt.Fprintf(s.stdout, "; retired %s", strings.Join(res.Retired, ", "))
	}
	if err == nil {
		_, err = fmt.Fprintln(s.stdout)
	}
	return err
}

func (s *session) restoreSnapshot(c *cli.Context) error {
	if c.NArg() != 1 || c.Args().First() == "" {
		return errors.New("snapshot restore takes one FILE")
	}
	path := c.Args().First()
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("snapshot file: %w", err)
	}
	if len(data) == 0 {
		return fmt.Errorf("snapshot file %s is empty", path)
	}
	rc, err := s.operatorClient(c)
	if err != nil {
		return err
	}
	if _, err := doRaw(rc.Put().AbsPath(snapshotPath).SetHeader("Content-Type", "application/octet-stream").Body(data).Do(c.Context)); err != nil {
		return err
	}
	_, err = fmt.Fprintf(s.stdout, "restored the cluster state from %s (%d bytes)\n", path, len(data))
	return err
}
