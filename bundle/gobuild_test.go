package bundle

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDownloadModuleRefused checks that a version the module proxy refuses
// is reported with the proxy's reason, by the download helper and by both
// of its callers, not only as a failed exit status.
func TestDownloadModuleRefused(t *testing.T) {
	ctx := proxyTest(t, "a module version it refuses", 2*time.Minute)
	const module, version = "github.com/Venafi/vcert/v5", "v5.13.7"
	_, _, err := downloadModule(ctx, module, version)
	_, gmErr := upstreamGoMod(ctx, module, version)
	cpErr := copyModule(ctx, module, version, filepath.Join(t.TempDir(), "vcert"))
	for name, err := range map[string]error{"downloadModule": err, "upstreamGoMod": gmErr, "copyModule": cpErr} {
		if err == nil {
			t.Fatalf("%s: no error for %s@%s, which the proxy refuses", name, module, version)
		}
		if !strings.Contains(err.Error(), "not available") || strings.Contains(err.Error(), "exit status") {
			t.Errorf("%s: error %q lacks the proxy's reason", name, err)
		}
	}
}
