package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// dockerCLI runs the docker command-line client against the local daemon.
type dockerCLI struct {
	bin string
}

func newDockerCLI() (*dockerCLI, error) {
	bin, err := exec.LookPath("docker")
	if err != nil {
		return nil, fmt.Errorf("the lab needs Docker: %w (Debian: apt-get install docker.io)", err)
	}
	return &dockerCLI{bin: bin}, nil
}

// run runs docker with args and returns its trimmed standard output. The error
// carries docker's standard error.
func (d *dockerCLI) run(ctx context.Context, args ...string) (string, error) {
	return d.runIn(ctx, nil, args...)
}

// runIn is run with stdin.
func (d *dockerCLI) runIn(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return strings.TrimSpace(out.String()), fmt.Errorf("docker %s: %s", summarize(args), msg)
	}
	return strings.TrimSpace(out.String()), nil
}

// summarize keeps error messages short: the docker sub-command and its first operand.
func summarize(args []string) string {
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		words = append(words, a)
		if len(words) == 3 {
			break
		}
	}
	return strings.Join(words, " ")
}

// serverVersion returns the daemon's version, or an error if no daemon answers
// within a few seconds.
func (d *dockerCLI) serverVersion(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return d.run(ctx, "version", "--format", "{{.Server.Version}}")
}

// exists reports whether `docker KIND inspect NAME` finds the object.
func (d *dockerCLI) exists(ctx context.Context, kind, name string) bool {
	_, err := d.run(ctx, kind, "inspect", name)
	return err == nil
}

// listByLabel lists the names of objects of a kind (container, network, volume)
// that carry the lab's label.
func (d *dockerCLI) listByLabel(ctx context.Context, kind string) ([]string, error) {
	var args []string
	switch kind {
	case "container":
		args = []string{"ps", "-a", "--filter", "label=" + labelKey, "--format", "{{.Names}}"}
	case "network":
		args = []string{"network", "ls", "--filter", "label=" + labelKey, "--format", "{{.Name}}"}
	case "volume":
		args = []string{"volume", "ls", "--filter", "label=" + labelKey, "--format", "{{.Name}}"}
	case "image":
		args = []string{"image", "ls", "--filter", "label=" + labelKey, "--format", "{{.Repository}}:{{.Tag}}"}
	default:
		return nil, fmt.Errorf("unknown docker object kind %q", kind)
	}
	out, err := d.run(ctx, args...)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}
