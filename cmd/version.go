package cmd

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is stamped at build time: -ldflags "-X github.com/bootctl/boot/cmd.version=v0.1.0".
var version = ""

// Version reports boot's version: the stamped one, else the module version
// recorded by the Go toolchain, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print boot's version",
		Example: "  boot version\n  boot version -o json",
		Args:    usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if g.Output == "json" {
				fmt.Fprintf(g.stdout, "{\"version\":%q,\"go\":%q,\"platform\":\"%s/%s\"}\n", Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			}
			fmt.Fprintf(g.stdout, "boot %s (%s, %s/%s)\n", Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
