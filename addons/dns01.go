package addons

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bootctl/boot/inventory"
)

// dns01Solver is what cert-manager's DNS-01 solver gets from boot: where to
// write (the hosted zone and region, for the issuer's values) and with what
// (the static key pair, for Secret Route53CredentialsSecret only: never in
// values, events or errors).
type dns01Solver struct {
	solver Route53Solver
	creds  aws.Credentials
}

// usesDNS01 tells whether the inventory's issuer solves its challenges over
// DNS-01.
func usesDNS01(inv *inventory.Inventory) bool {
	return inv.Registry.Issuer != inventory.IssuerSelfSigned && inv.Registry.ACME.Solver == inventory.SolverDNS01
}

// route53Solver finds, once per Installer, the hosted zone of dns.zone by its
// exact name (as the DNS record step does) through Route53 as
// Installer.Route53 says, with the default AWS credential chain on this
// machine, and takes that chain's key pair for cert-manager. Temporary
// credentials (a session token: SSO, an assumed role, an instance role) are
// refused: they would stop working in the cluster when they expire.
func (in *Installer) route53Solver(ctx context.Context) (*dns01Solver, error) {
	if in.dns01 != nil {
		return in.dns01, nil
	}
	client, creds, region, err := newRoute53(ctx, in.Route53)
	if err != nil {
		return nil, fmt.Errorf("registry.acme.solver dns01: %w", err)
	}
	if creds.SessionToken != "" || creds.CanExpire {
		return nil, fmt.Errorf("registry.acme.solver dns01: the AWS credentials of the default chain (%s) are temporary: cert-manager's route53 solver needs a static key pair "+
			"(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY without AWS_SESSION_TOKEN, or a profile with static keys), which boot copies into Secret %s/%s, "+
			"or an IRSA role, which boot does not set up yet", creds.Source, CertManagerNamespace, Route53CredentialsSecret)
	}
	id, err := DNS{Client: client}.findZone(ctx, fqdn(in.Inventory.DNS.Zone))
	if err != nil {
		return nil, fmt.Errorf("registry.acme.solver dns01: %w", err)
	}
	in.dns01 = &dns01Solver{solver: Route53Solver{Region: region, HostedZoneID: strings.TrimPrefix(id, "/hostedzone/")}, creds: creds}
	return in.dns01, nil
}
