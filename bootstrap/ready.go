package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bootctl/boot/nodes"
)

// ReadyTimeout bounds the wait for every node to be Ready.
const ReadyTimeout = 10 * time.Minute

// readyPoll is how often the nodes' state is read while waiting.
const readyPoll = 5 * time.Second

// WaitReady waits until every inventory host is a Ready node. On timeout it
// names the nodes still not ready, with their Ready condition and the tail
// of their kubelet's journal.
type WaitReady struct {
	Timeout time.Duration // zero means ReadyTimeout
}

// Name implements Phase.
func (WaitReady) Name() string { return "nodes ready" }

// nodeState is a node's Ready condition as the API server reports it. Its
// text is the cluster's (the kubelet's words), printed in errors, so it
// holds that text with control characters escaped (nodes.EscapeHostText).
type nodeState struct {
	Ready   bool
	Status  string // the condition's: True, False or Unknown; "" without one
	Reason  string
	Message string
	Kubelet string // the version the node's kubelet reports
}

// String describes the condition, e.g. "Ready=False (KubeletNotReady:
// container runtime network not ready ...)".
func (s nodeState) String() string {
	if s.Status == "" {
		return "no Ready condition yet"
	}
	why := s.Reason
	if s.Message != "" {
		why = strings.TrimPrefix(why+": "+s.Message, ": ")
	}
	if why == "" {
		return "Ready=" + s.Status
	}
	return "Ready=" + s.Status + " (" + why + ")"
}

// nodeList is what boot reads of the cluster's Nodes (kubectl get nodes -o
// json through the control plane).
type nodeList struct {
	Items []struct {
		Metadata struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Status struct {
			Conditions []struct {
				Type, Status, Reason, Message string
			} `json:"conditions"`
			Addresses []struct {
				Type, Address string
			} `json:"addresses"`
			NodeInfo struct {
				KubeletVersion string `json:"kubeletVersion"`
			} `json:"nodeInfo"`
		} `json:"status"`
	} `json:"items"`
}

// listNodes reads the cluster's Nodes through kubectl on the control plane cp.
func listNodes(ctx context.Context, cp *Host) (*nodeList, error) {
	out, err := kubectlOutput(ctx, cp, nil, "get", "nodes", "-o", "json")
	if err != nil {
		return nil, err
	}
	var list nodeList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("kubectl get nodes: %w", err)
	}
	return &list, nil
}

// nodeStates reads every node's Ready condition through kubectl on the
// control plane.
func nodeStates(ctx context.Context, cp *Host) (map[string]nodeState, error) {
	list, err := listNodes(ctx, cp)
	if err != nil {
		return nil, err
	}
	states := map[string]nodeState{}
	for _, it := range list.Items {
		s := nodeState{Kubelet: nodes.EscapeHostText(it.Status.NodeInfo.KubeletVersion)}
		for _, cond := range it.Status.Conditions {
			if cond.Type == "Ready" {
				s.Ready = cond.Status == "True"
				s.Status = nodes.EscapeHostText(cond.Status)
				s.Reason = nodes.EscapeHostText(cond.Reason)
				s.Message = nodes.EscapeHostText(cond.Message)
			}
		}
		states[it.Metadata.Name] = s
	}
	return states, nil
}

// notReady lists the inventory hosts that are not Ready nodes, sorted.
func (c *Cluster) notReady(states map[string]nodeState) []string {
	var out []string
	for _, h := range c.Hosts {
		if !states[h.Spec.Name].Ready {
			out = append(out, h.Spec.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Plan implements Phase.
func (w WaitReady) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	cp := c.controlPlane()
	desc := fmt.Sprintf("wait until all %d nodes are Ready", len(c.Hosts))
	ch := Change{Host: cp.Spec.Name, Description: desc, Apply: func(ctx context.Context) error { return w.wait(ctx, c) }}
	up, err := exists(ctx, cp, adminConf)
	if err != nil || !up {
		return []Change{ch}, err
	}
	states, err := nodeStates(ctx, cp)
	if err != nil {
		return nil, err
	}
	if len(c.notReady(states)) == 0 {
		return nil, nil
	}
	return []Change{ch}, nil
}

func (w WaitReady) wait(ctx context.Context, c *Cluster) error {
	timeout := w.Timeout
	if timeout == 0 {
		timeout = ReadyTimeout
	}
	deadline := time.Now().Add(timeout)
	cp := c.controlPlane()
	last := ""
	for {
		states, err := nodeStates(ctx, cp)
		if err != nil {
			return err
		}
		waiting := c.notReady(states)
		if len(waiting) == 0 {
			return nil
		}
		if progress := fmt.Sprintf("%d/%d nodes Ready; waiting for %s", len(c.Hosts)-len(waiting), len(c.Hosts), strings.Join(waiting, ", ")); progress != last {
			c.Log.Info(progress)
			last = progress
		}
		if time.Now().After(deadline) {
			return c.notReadyError(ctx, timeout, states, waiting)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(readyPoll):
		}
	}
}

// notReadyError explains, node by node, why nodes are not Ready: their
// Ready condition and the last lines of their kubelet's journal, or why
// those cannot be had.
func (c *Cluster) notReadyError(ctx context.Context, timeout time.Duration, states map[string]nodeState, waiting []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d node(s) not Ready after %s: %s", len(waiting), timeout, strings.Join(waiting, ", "))
	for _, name := range waiting {
		if s, ok := states[name]; ok {
			fmt.Fprintf(&b, "\n  %s: %s", name, s)
		} else {
			fmt.Fprintf(&b, "\n  %s: not registered with the API server", name)
		}
		for _, h := range c.Hosts {
			if h.Spec.Name == name {
				b.WriteString(kubeletJournal(ctx, h))
			}
		}
	}
	return fmt.Errorf("%s", b.String())
}

// kubeletJournalLines is how many of the kubelet's last journal lines a
// node's explanation shows.
const kubeletJournalLines = 8

// kubeletJournal returns the last lines of the host's kubelet journal, each
// on its own indented line, or one line saying why there are none. The
// host's text is escaped (nodes.EscapeHostText): a journal line may hold
// terminal escapes or carriage returns.
func kubeletJournal(ctx context.Context, h *Host) string {
	// Not streamed: the lines go into the error.
	out, err := h.Conn.Sudo(ctx, fmt.Sprintf("journalctl -u kubelet -n %d --no-pager -o cat", kubeletJournalLines), nodes.Stream(nil))
	if err != nil {
		return "\n    kubelet journal unavailable: " + nodes.EscapeHostText(strings.Join(strings.Fields(err.Error()), " "))
	}
	text := strings.TrimSpace(out.Stdout)
	if text == "" {
		return "\n    kubelet journal: no entries"
	}
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		b.WriteString("\n    kubelet: " + nodes.EscapeHostText(l))
	}
	return b.String()
}
