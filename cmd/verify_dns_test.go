package cmd

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestDNSServerFlag(t *testing.T) {
	for _, command := range []string{"verify", "addons", "up"} {
		for _, tc := range []struct{ value, want string }{
			{"127.0.0.1", "want HOST:PORT"},
			{"2001:db8::53", "want HOST:PORT"},
			{":53", `":53" has no host before the port`},
			{"127.0.0.1:0", `port "0" is not a number from 1 to 65535`},
			{"127.0.0.1:domain", `port "domain" is not a number from 1 to 65535`},
			{"[::1]:70000", `port "70000" is not a number from 1 to 65535`},
			{"ns 1.example.com:53", `host "ns 1.example.com" is neither an IP address nor a DNS name`},
			{"-ns.example.com:53", `host "-ns.example.com" is neither an IP address nor a DNS name`},
			{"10.0.0.256:53", `host "10.0.0.256" is neither an IP address nor a DNS name`},
		} {
			code, _, stderr := runBoot(t, command, "--dns-server", tc.value)
			if code != ExitInvalid || !strings.Contains(stderr, `invalid argument "`+tc.value+`" for "--dns-server" flag: `+tc.want) {
				t.Errorf("boot %s --dns-server %q: exit %d, stderr %q; want %d and %q", command, tc.value, code, stderr, ExitInvalid, tc.want)
			}
		}
		// Good values pass the flag (and the run stops later, for want of
		// an inventory).
		for _, good := range []string{"127.0.0.1:53", "[2001:db8::53]:53", "ns-1.awsdns-00.com:53", "ns-1.awsdns-00.com.:5353"} {
			if _, _, stderr := runBoot(t, command, "--dns-server", good); strings.Contains(stderr, "dns-server") {
				t.Errorf("boot %s --dns-server %s: %s", command, good, stderr)
			}
		}
		_, help, _ := runBoot(t, command, "--help")
		if !strings.Contains(help, "--dns-server HOST:PORT") || !strings.Contains(help, "before resolver caches expire") || !strings.Contains(help, "split-horizon") {
			t.Errorf("boot %s --help does not explain --dns-server:\n%s", command, help)
		}
	}
}

// boot addons and boot up hand --dns-server to the verify they end with.
func TestAddonsPassDNSServerToVerify(t *testing.T) {
	var f addonsFlags
	c := &cobra.Command{Use: "addons"}
	f.register(c)
	if err := c.ParseFlags([]string{"--dns-server", "127.0.0.1:5353"}); err != nil {
		t.Fatal(err)
	}
	got := f.verifyFlags()
	if want := (verifyFlags{throughService: true, justInstalled: true, dnsServer: "127.0.0.1:5353"}); got != want {
		t.Errorf("verifyFlags() = %+v, want %+v", got, want)
	}
	if got := (addonsFlags{}).verifyFlags().dnsServer; got != "" {
		t.Errorf("without --dns-server the system resolver is asked, but dnsServer = %q", got)
	}
}
