#!/bin/sh
# Prepares this machine for the nodes package's tests against a real sshd.
# Idempotent: safe to run again. Needs root and the packages openssh-server
# and sudo. The users and passwords below exist only for tests on a throwaway
# CI/dev machine; nodes/sshtest knows the same values.
set -eu

if [ "$(id -u)" != 0 ]; then
	echo "ci-setup.sh: must run as root" >&2
	exit 1
fi
for b in /usr/sbin/sshd /usr/bin/sudo; do
	if [ ! -x "$b" ]; then
		echo "ci-setup.sh: $b missing (apt-get install -y openssh-server sudo)" >&2
		exit 1
	fi
done

# sshd's privilege separation directory.
mkdir -p /run/sshd
chmod 0755 /run/sshd

adduser_once() {
	if ! id -u "$1" >/dev/null 2>&1; then
		useradd --create-home --shell /bin/bash "$1"
	fi
}

# boottest: logs in with a password (sshd checks /etc/shadow without PAM).
adduser_once boottest
echo 'boottest:boot-Test-pw-7Qx2' | chpasswd

# bootsudo: key login only, passwordless sudo. A "*" password is not
# "locked" for sshd, so key logins work without UsePAM.
adduser_once bootsudo
usermod -p '*' bootsudo

# bootsudopw: key login, sudo that asks for the user's password.
adduser_once bootsudopw
echo 'bootsudopw:boot-Sudo-pw-3Kd8' | chpasswd

umask 0227
cat >/etc/sudoers.d/boot-tests.tmp <<'SUDOERS'
Defaults:bootsudo,bootsudopw lecture=never
bootsudo ALL=(ALL:ALL) NOPASSWD: ALL
bootsudopw ALL=(ALL:ALL) ALL
SUDOERS
visudo -cqf /etc/sudoers.d/boot-tests.tmp
mv -f /etc/sudoers.d/boot-tests.tmp /etc/sudoers.d/boot-tests
echo "ci-setup.sh: sshd and users for nodes tests ready"
