package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The flags every command that makes a ConfigMap or Secret from data has.
func sourceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "from-literal", Usage: "a `KEY=VALUE` pair (repeatable)"},
		&cli.StringSliceFlag{Name: "from-file", Usage: "a file, `[KEY=]PATH`, whose content is the value of KEY (default: the file name); a directory adds each regular file in it (repeatable)"},
		&cli.StringSliceFlag{Name: "from-env-file", Usage: "a `PATH` of KEY=VALUE lines, # comments and blank lines ignored (repeatable)"},
	}
}

// The flags of every create command that can print instead of create.
func dryRunFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "dry-run", Usage: "`none`, client (print the object, send nothing) or server (the server checks it, stores nothing)", Value: "none"},
		outputFlag("print the object as `FORMAT`: yaml, json or name"),
	}
}

func (s *session) createConfigCommands() []*cli.Command {
	return []*cli.Command{{
		Name:      "configmap",
		Aliases:   []string{"cm"},
		Usage:     "create a configmap from literals, files or env files",
		ArgsUsage: "NAME [--from-literal KEY=VALUE]... [--from-file [KEY=]PATH]... [--from-env-file PATH]...",
		Flags:     append(sourceFlags(), dryRunFlags()...),
		Action:    s.createConfigMap,
	}, {
		Name:  "secret",
		Usage: "create a secret: generic, tls or docker-registry",
		Subcommands: []*cli.Command{{
			Name:      "generic",
			Usage:     "create a secret from literals, files or env files",
			ArgsUsage: "NAME [--type TYPE] [--from-literal KEY=VALUE]... [--from-file [KEY=]PATH]... [--from-env-file PATH]...",
			Flags:     append(append(sourceFlags(), &cli.StringFlag{Name: "type", Usage: "the secret's `TYPE` (default Opaque)"}), dryRunFlags()...),
			Action:    s.createSecretGeneric,
		}, {
			Name:      "tls",
			Usage:     "create a kubernetes.io/tls secret from a certificate and its key",
			ArgsUsage: "NAME --cert PATH --key PATH",
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "cert", Usage: "`PATH` of the PEM certificate (chain)"},
				&cli.StringFlag{Name: "key", Usage: "`PATH` of the PEM private key"},
			}, dryRunFlags()...),
			Action: s.createSecretTLS,
		}, {
			Name:      "docker-registry",
			Usage:     "create a kubernetes.io/dockerconfigjson secret for image pulls",
			ArgsUsage: "NAME --docker-server SERVER --docker-username USER --docker-password PASSWORD [--docker-email EMAIL]",
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "docker-server", Usage: "the registry `SERVER`", Value: "https://index.docker.io/v1/"},
				&cli.StringFlag{Name: "docker-username", Usage: "the registry `USER`"},
				&cli.StringFlag{Name: "docker-password", Usage: "the registry `PASSWORD`"},
				&cli.StringFlag{Name: "docker-email", Usage: "the registry `EMAIL` (optional)"},
			}, dryRunFlags()...),
			Action: s.createSecretDockerRegistry,
		}},
	}}
}

// configData is the data gathered from the source flags: text values and,
// for a ConfigMap, values that are not UTF-8.
type configData struct {
	text   map[string]string
	binary map[string][]byte
	// allBinary keeps every value as bytes (Secrets: data is bytes).
	allBinary bool
}

func (d *configData) add(flag, source, key string, value []byte) error {
	if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
		return fmt.Errorf("%s %q: key %q is not valid: %s", flag, source, key, strings.Join(errs, "; "))
	}
	_, inText := d.text[key]
	_, inBinary := d.binary[key]
	if inText || inBinary {
		return fmt.Errorf("%s %q: duplicate key %q: each key may be given once", flag, source, key)
	}
	if d.allBinary || !utf8.Valid(value) {
		d.binary[key] = value
		return nil
	}
	d.text[key] = string(value)
	return nil
}

// gatherData reads --from-literal, --from-file and --from-env-file.
func gatherData(c *cli.Context, allBinary bool) (*configData, error) {
	d := &configData{text: map[string]string{}, binary: map[string][]byte{}, allBinary: allBinary}
	for _, lit := range c.StringSlice("from-literal") {
		k, v, ok := strings.Cut(lit, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--from-literal %q: expected KEY=VALUE", lit)
		}
		if err := d.add("--from-literal", lit, k, []byte(v)); err != nil {
			return nil, err
		}
	}
	for _, src := range c.StringSlice("from-file") {
		if err := d.addFile(src); err != nil {
			return nil, err
		}
	}
	for _, path := range c.StringSlice("from-env-file") {
		if err := d.addEnvFile(path); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// addFile reads one --from-file: [KEY=]PATH, or a directory's regular files.
func (d *configData) addFile(src string) error {
	key, path, named := strings.Cut(src, "=")
	if !named {
		path = src
	} else if key == "" || path == "" {
		return fmt.Errorf("--from-file %q: expected [KEY=]PATH", src)
	}
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("--from-file %q: %w", src, err)
	}
	if info.IsDir() {
		if named {
			return fmt.Errorf("--from-file %q: a key cannot name a directory; give the directory alone to add each file under its own name", src)
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return fmt.Errorf("--from-file %q: %w", src, err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue // as kubectl: subdirectories, links and devices are skipped
			}
			value, err := os.ReadFile(filepath.Join(path, e.Name()))
			if err != nil {
				return fmt.Errorf("--from-file %q: %w", src, err)
			}
			if err := d.add("--from-file", src, e.Name(), value); err != nil {
				return err
			}
		}
		return nil
	}
	if !named {
		key = filepath.Base(path)
	}
	value, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--from-file %q: %w", src, err)
	}
	return d.add("--from-file", src, key, value)
}

// addEnvFile reads KEY=VALUE lines as kubectl does: blank lines and lines
// starting with # are skipped, a line that is only KEY takes the value of
// that environment variable, and the value is taken as it is (no quotes
// removed).
func (d *configData) addEnvFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--from-env-file %q: %w", path, err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !utf8.ValidString(line) {
			return fmt.Errorf("--from-env-file %q: line %d is not UTF-8", path, n)
		}
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		k, v, ok := strings.Cut(trimmed, "=")
		if !ok {
			v = os.Getenv(k)
		}
		if errs := validation.IsEnvVarName(k); len(errs) > 0 {
			return fmt.Errorf("--from-env-file %q: line %d: %q is not a valid variable name: %s", path, n, k, strings.Join(errs, "; "))
		}
		if err := d.add("--from-env-file", fmt.Sprintf("%s:%d", path, n), k, []byte(v)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("--from-env-file %q: %w", path, err)
	}
	return nil
}

func oneName(c *cli.Context, what, usage string) (string, error) {
	if c.NArg() != 1 || c.Args().First() == "" {
		return "", fmt.Errorf("create %s takes one NAME: orchctl create %s %s", what, what, usage)
	}
	name := c.Args().First()
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return "", fmt.Errorf("create %s: name %q is not valid: %s", what, name, strings.Join(errs, "; "))
	}
	return name, nil
}

func (s *session) createConfigMap(c *cli.Context) error {
	name, err := oneName(c, "configmap", "NAME [--from-literal KEY=VALUE]... [--from-file [KEY=]PATH]... [--from-env-file PATH]...")
	if err != nil {
		return err
	}
	d, err := gatherData(c, false)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}
	if len(d.text) > 0 {
		cm.Data = d.text
	}
	if len(d.binary) > 0 {
		cm.BinaryData = d.binary
	}
	return s.createConfigObject(c, cm)
}

func (s *session) createSecretGeneric(c *cli.Context) error {
	name, err := oneName(c, "secret generic", "NAME [--type TYPE] [--from-literal KEY=VALUE]... [--from-file [KEY=]PATH]... [--from-env-file PATH]...")
	if err != nil {
		return err
	}
	d, err := gatherData(c, true)
	if err != nil {
		return err
	}
	sec := newSecretObject(name, corev1.SecretType(c.String("type")), d.binary)
	return s.createConfigObject(c, sec)
}

func newSecretObject(name string, typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
	if typ == "" {
		typ = corev1.SecretTypeOpaque
	}
	sec := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       typ,
	}
	if len(data) > 0 {
		sec.Data = data
	}
	return sec
}

func (s *session) createSecretTLS(c *cli.Context) error {
	name, err := oneName(c, "secret tls", "NAME --cert PATH --key PATH")
	if err != nil {
		return err
	}
	certPath, keyPath := c.String("cert"), c.String("key")
	if certPath == "" || keyPath == "" {
		return errors.New("create secret tls needs --cert PATH and --key PATH")
	}
	cert, err := os.ReadFile(certPath)
	if err != nil {
		return fmt.Errorf("--cert %q: %w", certPath, err)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		return fmt.Errorf("--key %q: %w", keyPath, err)
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return fmt.Errorf("--cert %q and --key %q: not a certificate and its private key in PEM: %w", certPath, keyPath, err)
	}
	sec := newSecretObject(name, corev1.SecretTypeTLS, map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key})
	return s.createConfigObject(c, sec)
}

// dockerConfigJSON is the .dockerconfigjson of a docker-registry secret,
// as kubectl writes it.
type dockerConfigJSON struct {
	Auths map[string]dockerConfigEntry `json:"auths"`
}

type dockerConfigEntry struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Email    string `json:"email,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

func (s *session) createSecretDockerRegistry(c *cli.Context) error {
	name, err := oneName(c, "secret docker-registry", "NAME --docker-server SERVER --docker-username USER --docker-password PASSWORD [--docker-email EMAIL]")
	if err != nil {
		return err
	}
	server, user, password := c.String("docker-server"), c.String("docker-username"), c.String("docker-password")
	for flag, v := range map[string]string{"--docker-server": server, "--docker-username": user, "--docker-password": password} {
		if v == "" {
			return fmt.Errorf("create secret docker-registry needs %s", flag)
		}
	}
	cfg, err := json.Marshal(dockerConfigJSON{Auths: map[string]dockerConfigEntry{server: {
		Username: user, Password: password, Email: c.String("docker-email"),
		Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
	}}})
	if err != nil {
		return err
	}
	sec := newSecretObject(name, corev1.SecretTypeDockerConfigJson, map[string][]byte{corev1.DockerConfigJsonKey: cfg})
	return s.createConfigObject(c, sec)
}

// createConfigObject creates a ConfigMap or Secret, or with --dry-run
// prints it, and reports it as kubectl does.
func (s *session) createConfigObject(c *cli.Context, obj metav1.Object) error {
	dry := c.String("dry-run")
	switch dry {
	case "", "none", "client", "server":
	default:
		return fmt.Errorf("--dry-run %q: want none, client or server", dry)
	}
	format := c.String("output")
	switch format {
	case "", "yaml", "json", "name":
	default:
		return fmt.Errorf("--output %q: want yaml, json or name", format)
	}
	kind := "configmap"
	if _, ok := obj.(*corev1.Secret); ok {
		kind = "secret"
	}
	out := obj
	if dry == "client" {
		// Nothing is sent, so nothing needs a server; -n still counts.
		if ns := c.String("namespace"); ns != "" {
			obj.SetNamespace(ns)
		}
	} else {
		cn, err := s.connect(c)
		if err != nil {
			return err
		}
		opts := metav1.CreateOptions{}
		if dry == "server" {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			created, err := cn.clientset.CoreV1().ConfigMaps(cn.namespace).Create(c.Context, o, opts)
			if err != nil {
				return err
			}
			created.TypeMeta = o.TypeMeta
			out = created
		case *corev1.Secret:
			created, err := cn.clientset.CoreV1().Secrets(cn.namespace).Create(c.Context, o, opts)
			if err != nil {
				return err
			}
			created.TypeMeta = o.TypeMeta
			out = created
		}
	}
	switch format {
	case "yaml", "json":
		return writeObject(s.stdout, format, out)
	case "name":
		_, err := fmt.Fprintf(s.stdout, "%s/%s\n", kind, out.GetName())
		return err
	}
	suffix := ""
	switch dry {
	case "client":
		suffix = " (dry run)"
	case "server":
		suffix = " (server dry run)"
	}
	_, err := fmt.Fprintf(s.stdout, "%s/%s created%s\n", kind, out.GetName(), suffix)
	return err
}
