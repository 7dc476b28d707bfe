// Command boot bootstraps a kubeadm Kubernetes cluster with a private Docker
// registry over SSH. See README.md.
package main

import (
	"os"

	"github.com/bootctl/boot/cmd"
)

func main() {
	os.Exit(cmd.Execute(os.Args[1:], os.Stdout, os.Stderr))
}
