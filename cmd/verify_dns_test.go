package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/internal/route53test"
)

// dnsZone starts the fake Route53 with zone example.com holding the
// registry's records, and returns it.
func dnsZone(t *testing.T) *route53test.Server {
	t.Helper()
	s := route53test.Start(t)
	z := s.AddZone("ZPUB", "example.com", false)
	for _, rs := range []route53test.RecordSet{
		{Name: "registry.example.com", Type: "A", TTL: 300, Values: []string{"198.51.100.2", "198.51.100.12"}},
		{Name: "registry.example.com", Type: "TXT", TTL: 300, Values: []string{`"heritage=boot,cluster=lab"`}},
		{Name: "dual.example.com", Type: "A", TTL: 300, Values: []string{"198.51.100.5"}},
		{Name: "dual.example.com", Type: "AAAA", TTL: 300, Values: []string{"2001:db8::5"}},
		{Name: "txt-only.example.com", Type: "TXT", TTL: 300, Values: []string{`"x"`}},
	} {
		s.PutRecordSet(z, rs)
	}
	return s
}

// verifyEvents parses the JSON events a printer wrote.
func verifyEvents(t *testing.T, out *bytes.Buffer) []Event {
	t.Helper()
	var evs []Event
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

func TestVerifyDNSAsksTheGivenServer(t *testing.T) {
	s := dnsZone(t)
	server := s.DNSAddr()
	for _, tc := range []struct {
		name    string
		host    string
		want    []string
		ok      bool
		message string
	}{
		{"right addresses, in another order", "registry.example.com", []string{"198.51.100.12", "198.51.100.2"}, true,
			"registry.example.com resolves to 198.51.100.12, 198.51.100.2 (asked " + server + ")"},
		{"A and AAAA", "dual.example.com.", []string{"2001:db8::5", "198.51.100.5"}, true,
			"dual.example.com. resolves to 198.51.100.5, 2001:db8::5 (asked " + server + ")"},
		{"wrong addresses", "registry.example.com", []string{"198.51.100.2", "198.51.100.99"}, false,
			"registry.example.com resolves to 198.51.100.12, 198.51.100.2, want 198.51.100.2, 198.51.100.99 (asked " + server + ")"},
		{"a missing address", "registry.example.com", []string{"198.51.100.2"}, false,
			"registry.example.com resolves to 198.51.100.12, 198.51.100.2, want 198.51.100.2 (asked " + server + ")"},
		{"no address record", "txt-only.example.com", []string{"198.51.100.2"}, false,
			"txt-only.example.com resolves to no address, want 198.51.100.2 (asked " + server + ")"},
		{"NXDOMAIN", "missing.example.com", []string{"198.51.100.2"}, false,
			"missing.example.com: " + server + " answered NXDOMAIN (no such name)"},
		{"outside the server's zones", "registry.example.org", []string{"198.51.100.2"}, false,
			"registry.example.org: " + server + " answered REFUSED (it does not serve that name) to the A query"},
	} {
		for _, lenient := range []bool{false, true} {
			name := tc.name
			if lenient {
				name += ", just installed"
			}
			t.Run(name, func(t *testing.T) {
				var out bytes.Buffer
				r := &verifyReport{out: newPrinter(&out, "json")}
				if lenient {
					r.lenient = map[string]bool{"dns": true}
				}
				r.dns(context.Background(), server, tc.host, tc.want, 0)
				evs := verifyEvents(t, &out)
				if len(evs) != 1 {
					t.Fatalf("%d events, want 1: %+v", len(evs), evs)
				}
				e := evs[0]
				want := bootstrap.StatusOK
				switch {
				case !tc.ok && lenient:
					want = bootstrap.StatusWarning
				case !tc.ok:
					want = bootstrap.StatusFailed
				}
				if e.Phase != "verify" || e.Host != "dns" || e.Status != want || e.Message != tc.message {
					t.Errorf("event %s %s %s %q\nwant   verify dns %s %q", e.Phase, e.Host, e.Status, e.Message, want, tc.message)
				}
				if wantFailed := !tc.ok && !lenient; slices.Equal(r.failed, []string{"dns"}) != wantFailed || (!wantFailed && len(r.failed) != 0) {
					t.Errorf("failed checks %q", r.failed)
				}
			})
		}
	}
	// Every answer came from the fake: it saw each name asked.
	q := s.Queries()
	for _, want := range []string{"A registry.example.com.", "AAAA registry.example.com.", "AAAA dual.example.com.", "A missing.example.com.", "A registry.example.org."} {
		if !slices.Contains(q, want) {
			t.Errorf("the DNS server was not asked %q; it was asked %q", want, q)
		}
	}
}

// The DNS answers follow the zone: a record Route53 changes shows at once.
func TestVerifyDNSSeesZoneChanges(t *testing.T) {
	s := dnsZone(t)
	var out bytes.Buffer
	r := &verifyReport{out: newPrinter(&out, "json")}
	s.PutRecordSet("ZPUB", route53test.RecordSet{Name: "registry.example.com", Type: "A", TTL: 60, Values: []string{"198.51.100.77"}})
	r.dns(context.Background(), s.DNSAddr(), "registry.example.com", []string{"198.51.100.77"}, 0)
	if evs := verifyEvents(t, &out); len(r.failed) != 0 || evs[0].Status != bootstrap.StatusOK {
		t.Errorf("after the change: %+v", evs)
	}
}

// Right after boot wrote the record, verify waits for the zone's servers
// to serve it: a record that shows a second later passes, one that never
// shows fails once the wait is over.
func TestVerifyDNSWaitsForANewRecord(t *testing.T) {
	s := dnsZone(t)
	go func() {
		time.Sleep(time.Second)
		s.PutRecordSet("ZPUB", route53test.RecordSet{Name: "new.example.com", Type: "A", TTL: 60, Values: []string{"198.51.100.9"}})
	}()
	var out bytes.Buffer
	r := &verifyReport{out: newPrinter(&out, "json")}
	r.dns(context.Background(), s.DNSAddr(), "new.example.com", []string{"198.51.100.9"}, 10*time.Second)
	if evs := verifyEvents(t, &out); len(r.failed) != 0 || len(evs) != 1 || evs[0].Status != bootstrap.StatusOK {
		t.Errorf("a record that shows after a second: %+v", evs)
	}
	out.Reset()
	r.dns(context.Background(), s.DNSAddr(), "never.example.com", []string{"198.51.100.9"}, 3*time.Second)
	evs := verifyEvents(t, &out)
	if !slices.Equal(r.failed, []string{"dns"}) || len(evs) != 1 || !strings.Contains(evs[0].Message, "NXDOMAIN") {
		t.Errorf("a record that never shows: failed %q, events %+v", r.failed, evs)
	}
}

// A server that does not answer fails the check promptly with the reason.
func TestVerifyDNSServerDown(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().String()
	pc.Close()
	var out bytes.Buffer
	r := &verifyReport{out: newPrinter(&out, "json")}
	r.dns(context.Background(), closed, "registry.example.com", []string{"198.51.100.2"}, 0)
	evs := verifyEvents(t, &out)
	if !slices.Equal(r.failed, []string{"dns"}) || len(evs) != 1 || !strings.HasPrefix(evs[0].Message, "registry.example.com: asking "+closed+": ") {
		t.Errorf("failed %q, events %+v", r.failed, evs)
	}
}

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
		} {
			code, _, stderr := run(t, command, "--dns-server", tc.value)
			if code != ExitInvalid || !strings.Contains(stderr, `invalid argument "`+tc.value+`" for "--dns-server" flag: `+tc.want) {
				t.Errorf("boot %s --dns-server %q: exit %d, stderr %q; want %d and %q", command, tc.value, code, stderr, ExitInvalid, tc.want)
			}
		}
		// Good values pass the flag (and the run stops later, for want of
		// an inventory).
		for _, good := range []string{"127.0.0.1:53", "[2001:db8::53]:53", "ns-1.awsdns-00.com:53", "ns-1.awsdns-00.com.:5353"} {
			if _, _, stderr := run(t, command, "--dns-server", good); strings.Contains(stderr, "dns-server") {
				t.Errorf("boot %s --dns-server %s: %s", command, good, stderr)
			}
		}
		_, help, _ := run(t, command, "--help")
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
