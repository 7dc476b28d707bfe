package lab

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// testLog sends the lab's progress lines to the test log and keeps them.
type testLog struct {
	t   *testing.T
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func newTestLog(t *testing.T) testLog { return testLog{t, &sync.Mutex{}, &bytes.Buffer{}} }

func (w testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (w testLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
