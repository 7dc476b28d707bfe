package lab

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"net/netip"
	"os"
	"strings"
)

// subnetCandidates are the /24 networks the lab may use, in order: all in
// 172.16.0.0/12, away from Docker's own default pools (172.17-172.28).
func subnetCandidates() []netip.Prefix {
	var out []netip.Prefix
	for third := 40; third < 60; third++ {
		out = append(out, netip.MustParsePrefix(fmt.Sprintf("172.29.%d.0/24", third)))
	}
	return out
}

// routedPrefixes reads the IPv4 routes of the main table from /proc/net/route,
// the default route excluded.
func routedPrefixes(routeFile string) ([]netip.Prefix, error) {
	f, err := os.Open(routeFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []netip.Prefix
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if line == 1 || len(fields) < 8 {
			continue
		}
		dst, err1 := hexIPv4(fields[1])
		mask, err2 := hexIPv4(fields[7])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s line %d: cannot read %q", routeFile, line, sc.Text())
		}
		m := mask.As4()
		ones := bits.OnesCount32(binary.BigEndian.Uint32(m[:]))
		if ones == 0 {
			continue
		}
		out = append(out, netip.PrefixFrom(dst, ones).Masked())
	}
	return out, sc.Err()
}

// hexIPv4 decodes /proc/net/route's little-endian hex addresses.
func hexIPv4(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("bad address %q", s)
	}
	return netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]}), nil
}

// chooseSubnet returns the first candidate that overlaps no route.
func chooseSubnet(candidates, routes []netip.Prefix) (netip.Prefix, error) {
	for _, c := range candidates {
		free := true
		for _, r := range routes {
			if c.Overlaps(r) {
				free = false
				break
			}
		}
		if free {
			return c, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("every candidate lab subnet (%s to %s) overlaps a route of this machine",
		candidates[0], candidates[len(candidates)-1])
}

// addr returns the lab network's address ending in octet.
func (l *Lab) addr(octet int) string {
	p := netip.MustParsePrefix(l.Subnet).Addr().As4()
	p[3] = byte(octet)
	return netip.AddrFrom4(p).String()
}

// createNetwork creates the lab's bridge network on a free subnet.
func (l *Lab) createNetwork(ctx context.Context, d *dockerCLI) error {
	if d.exists(ctx, "network", networkName) {
		return fmt.Errorf("a Docker network %s already exists: take the old lab down first (boot lab down)", networkName)
	}
	routes, err := routedPrefixes("/proc/net/route")
	if err != nil {
		return err
	}
	subnet, err := chooseSubnet(subnetCandidates(), routes)
	if err != nil {
		return err
	}
	l.Subnet = subnet.String()
	l.Gateway = l.addr(1)
	l.Registry = hostPort(l.addr(registryOctet), registryPort)
	_, err = d.run(ctx, "network", "create", "--driver", "bridge",
		"--subnet", l.Subnet, "--gateway", l.Gateway,
		"-o", "com.docker.network.bridge.name="+bridgeName,
		"-o", fmt.Sprintf("com.docker.network.driver.mtu=%d", networkMTU),
		"--label", labelKey+"=network", networkName)
	if err != nil {
		return err
	}
	return l.save()
}
