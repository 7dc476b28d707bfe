package lab

// The lab's outside world, started by the real code on loopback: moto,
// CoreDNS from the bundle, Pebble. It needs moto_server, the bundle and go:
//
//	BOOT_BUNDLE_DIR=$PWD/dist/bundle go test -run TestOutsideWorld -v ./lab/

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"golang.org/x/crypto/acme"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/bootctl/boot/internal/testenv"
)

// buildPebble installs Pebble from the module proxy into dir.
func buildPebble(t *testing.T, dir string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("go", "install", PebbleModule)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+dir, "GOFLAGS=", "GOPROXY=https://proxy.golang.org")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", PebbleModule, err, out)
	}
	t.Logf("timing: pebble build %s", time.Since(start).Round(time.Millisecond))
}

// freePort returns a loopback port free for TCP (and for UDP when udp is set).
func freePort(t *testing.T, udp bool) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		if udp {
			p, err := net.ListenPacket("udp", hostPort("127.0.0.1", port))
			if err != nil {
				ok = false
			} else {
				p.Close()
			}
		}
		l.Close()
		if ok {
			return port
		}
	}
	t.Fatal("no free port for TCP and UDP")
	return 0
}

// answers returns the A and TXT values of m's answer section.
func answers(m *dnsmessage.Message) []string {
	var out []string
	for _, a := range m.Answers {
		switch b := a.Body.(type) {
		case *dnsmessage.AResource:
			out = append(out, netip.AddrFrom4(b.A).String())
		case *dnsmessage.TXTResource:
			out = append(out, strings.Join(b.TXT, ""))
		}
	}
	return out
}

// waitAnswer asks server until name's typ records are want (CoreDNS reads
// the zone from moto every dnsRefresh), and returns how long that took.
func waitAnswer(t *testing.T, ctx context.Context, server, name string, typ dnsmessage.Type, want ...string) time.Duration {
	t.Helper()
	start := time.Now()
	var got []string
	var err error
	for time.Since(start) < 15*time.Second {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var m *dnsmessage.Message
		m, err = queryDNS(qctx, "udp", server, name, typ)
		cancel()
		if err == nil {
			got = answers(m)
			if slices.Equal(got, want) {
				return time.Since(start)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s %s at %s: %q, %v; want %q", name, typ, server, got, err, want)
	return 0
}

func upsert(t *testing.T, ctx context.Context, c *route53.Client, zone, name string, typ types.RRType, value string) {
	t.Helper()
	_, err := c.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zone),
		ChangeBatch: &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionUpsert, ResourceRecordSet: &types.ResourceRecordSet{
			Name: aws.String(name), Type: typ, TTL: aws.Int64(5), ResourceRecords: []types.ResourceRecord{{Value: aws.String(value)}},
		}}}},
	})
	if err != nil {
		t.Fatalf("upsert %s %s: %v", name, typ, err)
	}
}

func TestOutsideWorldOnLoopback(t *testing.T) {
	if _, err := exec.LookPath(motoProgram); err != nil {
		testenv.Need(t, "%s is not installed (moto 5.2.1 with its server extra): %v", motoProgram, err)
	}
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Need(t, "go is needed to build Pebble: %v", err)
	}
	bundleDir := testenv.BundleDir(t)
	tools := t.TempDir()
	buildPebble(t, tools)
	dir := t.TempDir()
	l := &Lab{Dir: dir, Subnet: "127.0.0.0/24", Gateway: "127.0.0.1", RegistryCA: filepath.Join(dir, "registry", "ca.crt")}
	if err := l.writeCerts(); err != nil {
		t.Fatal(err)
	}
	ports := outsidePorts{DNS: freePort(t, true), ACME: freePort(t, false), ACMEManagement: freePort(t, false), Route53: freePort(t, false)}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := newTestLog(t)
	logf := logger(log)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			if err := l.stopServices(context.Background(), logf); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})

	start := time.Now()
	if err := l.startOutside(ctx, filepath.Join(tools, pebbleTool), bundleDir, ports, logf); err != nil {
		t.Fatalf("start the outside world: %v", err)
	}
	t.Logf("timing: moto, zone, coredns, pebble up in %s", time.Since(start).Round(time.Millisecond))

	saved, err := loadState(dir)
	if err != nil || saved == nil {
		t.Fatalf("state: %v", err)
	}
	dnsServer := hostPort("127.0.0.1", ports.DNS)
	want := Lab{ACMEDirectory: fmt.Sprintf("https://127.0.0.1:%d/dir", ports.ACME), ACMECA: l.RegistryCA, ACMERoot: filepath.Join(dir, acmeRootFile),
		Route53Endpoint: fmt.Sprintf("http://127.0.0.1:%d", ports.Route53), DNSServer: dnsServer}
	if saved.ACMEDirectory != want.ACMEDirectory || saved.ACMECA != want.ACMECA || saved.ACMERoot != want.ACMERoot ||
		saved.Route53Endpoint != want.Route53Endpoint || saved.DNSServer != want.DNSServer || saved.Route53ZoneID == "" {
		t.Errorf("state: acme %q %q %q, route53 %q zone %q, dns %q; want %+v", saved.ACMEDirectory, saved.ACMECA, saved.ACMERoot,
			saved.Route53Endpoint, saved.Route53ZoneID, saved.DNSServer, want)
	}
	var names []string
	for _, s := range saved.Services {
		names = append(names, s.Name)
		if !s.running() {
			t.Errorf("service %s (pid %d) recorded but not running", s.Name, s.PID)
		}
	}
	if !slices.Equal(names, []string{"moto", "coredns", "pebble"}) {
		t.Errorf("services in the state: %q", names)
	}
	corefile, err := os.ReadFile(filepath.Join(dir, corednsDir, "Corefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(corefile), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "forward" {
			t.Errorf("the Corefile forwards: %q", line)
		}
	}

	r53 := route53Client(l.Route53Endpoint)
	t.Run("a record written through the Route53 API is served as DNS", func(t *testing.T) {
		for _, name := range []string{nameServerHost, PebbleHost} {
			waitAnswer(t, ctx, dnsServer, name, dnsmessage.TypeA, "127.0.0.1")
		}
		upsert(t, ctx, r53, l.Route53ZoneID, "www."+LabZone+".", types.RRTypeA, "127.0.0.9")
		took := waitAnswer(t, ctx, dnsServer, "www."+LabZone, dnsmessage.TypeA, "127.0.0.9")
		t.Logf("timing: UPSERT to DNS answer %s", took.Round(time.Millisecond))
		m, err := queryDNS(ctx, "tcp", dnsServer, "www."+LabZone, dnsmessage.TypeA)
		if err != nil || !slices.Equal(answers(m), []string{"127.0.0.9"}) || !m.Authoritative {
			t.Errorf("over TCP: %v %v", m, err)
		}
	})
	t.Run("nothing outside the zone, nothing forwarded", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			rcode dnsmessage.RCode
		}{
			{"nothere." + LabZone, dnsmessage.RCodeNameError},
			{"outside-the-lab.invalid", dnsmessage.RCodeRefused},
			{"test", dnsmessage.RCodeRefused},
			{"localhost", dnsmessage.RCodeRefused},
		} {
			m, err := queryDNS(ctx, "udp", dnsServer, c.name, dnsmessage.TypeA)
			if err != nil || m.RCode != c.rcode || len(m.Answers) != 0 {
				t.Errorf("%s: %v %v; want %s and no answer", c.name, m, err, c.rcode)
			}
		}
	})

	labClient, err := registryClient(l.ACMECA)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("pebble answers over TLS checked with the lab CA only", func(t *testing.T) {
		if err := checkACMEDirectory(ctx, labClient, l.ACMEDirectory); err != nil {
			t.Error(err)
		}
		// The machine's roots do not know the lab CA.
		err := checkACMEDirectory(ctx, &http.Client{Timeout: 5 * time.Second}, l.ACMEDirectory)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("without the lab CA: %v; want an unknown-authority error", err)
		}
	})
	t.Run("pebble issues through DNS-01 against moto and coredns", func(t *testing.T) {
		checkIssue(t, ctx, l, labClient, r53)
	})

	stopped = true
	start = time.Now()
	if err := l.stopServices(ctx, logf); err != nil {
		t.Fatal(err)
	}
	t.Logf("timing: stop %s", time.Since(start).Round(time.Millisecond))
	for _, s := range l.Services {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", s.PID)); err == nil && s.running() {
			t.Errorf("%s (pid %d) still running", s.Name, s.PID)
		}
	}
	for _, p := range []int{ports.DNS, ports.ACME, ports.ACMEManagement, ports.Route53} {
		if tcpReachable(ctx, hostPort("127.0.0.1", p)) {
			t.Errorf("port %d still open after stop", p)
		}
	}
	if err := l.stopServices(ctx, logf); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

// checkIssue gets a certificate for www.lab.test from the lab's Pebble with
// the DNS-01 challenge, its TXT record written through moto and read by
// Pebble from CoreDNS, and verifies the chain against Pebble's root.
func checkIssue(t *testing.T, ctx context.Context, l *Lab, client *http.Client, r53 *route53.Client) {
	const name = "www." + LabZone
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ac := &acme.Client{Key: key, DirectoryURL: l.ACMEDirectory, HTTPClient: client}
	if _, err := ac.Register(ctx, &acme.Account{Contact: []string{"mailto:admin@" + LabZone}}, acme.AcceptTOS); err != nil {
		t.Fatalf("register: %v", err)
	}
	order, err := ac.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		t.Fatalf("order: %v", err)
	}
	for _, u := range order.AuthzURLs {
		z, err := ac.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var chal *acme.Challenge
		for _, c := range z.Challenges {
			if c.Type == "dns-01" {
				chal = c
			}
		}
		if chal == nil {
			t.Fatalf("no dns-01 challenge in %+v", z)
		}
		value, err := ac.DNS01ChallengeRecord(chal.Token)
		if err != nil {
			t.Fatal(err)
		}
		upsert(t, ctx, r53, l.Route53ZoneID, "_acme-challenge."+name+".", types.RRTypeTxt, `"`+value+`"`)
		waitAnswer(t, ctx, l.DNSServer, "_acme-challenge."+name, dnsmessage.TypeTXT, value)
		if _, err := ac.Accept(ctx, chal); err != nil {
			t.Fatalf("accept: %v", err)
		}
		if _, err := ac.WaitAuthorization(ctx, z.URI); err != nil {
			t.Fatalf("authorization: %v", err)
		}
	}
	if order, err = ac.WaitOrder(ctx, order.URI); err != nil {
		t.Fatalf("order: %v", err)
	}
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, certKey)
	if err != nil {
		t.Fatal(err)
	}
	der, _, err := ac.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	t.Logf("timing: DNS-01 certificate in %s (chain of %d)", time.Since(start).Round(time.Millisecond), len(der))
	rootPEM, err := os.ReadFile(l.ACMERoot)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("%s: no certificate", l.ACMERoot)
	}
	var certs []*x509.Certificate
	for _, d := range der {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("the certificate does not verify against Pebble's root %s: %v", l.ACMERoot, err)
	}
	// The lab CA is not Pebble's issuer: the same chain fails against it.
	labCA, err := os.ReadFile(l.ACMECA)
	if err != nil {
		t.Fatal(err)
	}
	other := x509.NewCertPool()
	other.AppendCertsFromPEM(labCA)
	if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: name, Roots: other, Intermediates: inter}); err == nil {
		t.Error("the certificate verifies against the lab CA too")
	}
}

// TestServiceIdentity: a recorded service is ours only with the same PID,
// start time and program name; stopService leaves any other process alone.
func TestServiceIdentity(t *testing.T) {
	self := os.Getpid()
	start, zombie, err := procStart(self)
	if err != nil || zombie {
		t.Fatalf("procStart(self) = %d, %v, %v", start, zombie, err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ours := Service{Name: "test", Program: filepath.Base(exe), PID: self, StartTime: start}
	if !ours.running() {
		t.Errorf("%+v: not running", ours)
	}
	for _, s := range []Service{
		{Name: "other start", Program: ours.Program, PID: self, StartTime: start + 1},
		{Name: "other program", Program: "pebble", PID: self, StartTime: start},
		{Name: "no pid", Program: ours.Program},
	} {
		if s.running() {
			t.Errorf("%s: %+v counts as running", s.Name, s)
		}
		// Would kill this test if it signalled.
		if err := stopService(context.Background(), s); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
}
