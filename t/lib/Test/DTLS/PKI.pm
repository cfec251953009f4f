package Test::DTLS::PKI;

# A throwaway PKI for the ngx_dtls certificate tests, made at test time
# (nothing of it is ever committed) with the openssl command line tool,
# EC P-256 keys except where RSA is the point.  About half a second.
#
#	use Test::DTLS::PKI;
#
#	my $pki = Test::DTLS::PKI->new($t->testdir() . '/pki');
#	$pki->path('server-ec.crt');      # absolute path, dies if unknown
#	$pki->files();                    # every file made, sorted
#	$pki->info('client');             # subject, issuer, serial, ...
#	$pki->password();                 # of server-ec.enc.key
#	$pki->rsa_chain('big', 4096);     # on demand, see below
#
# What is made (NAME.crt and NAME.key for each certificate; keys 0600):
#
#   root          "Test Root CA", self-signed
#   int           "Test Intermediate CA", signed by root
#   int2          "Test Intermediate 2", signed by int
#   other         "Other CA", an unrelated self-signed root
#
#   server-ec     EC leaf signed by int; server-ec.crt is leaf + int
#   server-rsa    RSA 2048 leaf signed by int; server-rsa.crt is leaf + int
#   server-long   EC leaf signed by int2; server-long.crt is
#                 leaf + int2 + int (a 3-certificate chain)
#                 (server certificates: CN=server-ec and so on, SAN
#                 DNS:localhost and IP:127.0.0.1, serverAuth)
#
#   client          CN=client-1, signed by root directly
#   client-int      CN=client-int, signed by int; client-int.crt is
#                   leaf + int (one intermediate)
#   client-long     CN=client-long, signed by int2; client-long.crt is
#                   leaf + int2 + int (two intermediates)
#   client-other    CN=client-other, signed by "Other CA"
#   client-expired  CN=client-expired, signed by root, valid from
#                   2020-01-01 to 2020-01-02 only
#   client-revoked  CN=client-revoked, signed by root, listed in root.crl
#   client-self     CN=client-self, self-signed
#                   (client certificates: clientAuth; every subject
#                   also has O=ngx_dtls test, RFC 2253: "CN=...,O=...")
#
#   root.crl      CRL of root, listing client-revoked
#   int.crl       CRL of int, empty
#   int2.crl      CRL of int2, empty
#   all.crl       the three CRLs, for chains through the intermediates
#                 (nginx's CRL check covers every certificate of a chain)
#   ca-all.crt    root + other: both roots in one CA file
#
#   server-ec.enc.key   server-ec.key encrypted (AES-256) with the
#                       password in server.pass, for dtls_password_file
#   server.pass         a wrong password line first, then the right one
#                       (nginx tries each line)
#
# Made on demand by rsa_chain(NAME, BITS), RSA keys of BITS bits (4096
# bits take a second or so each):
#
#   NAME-root     "NAME Root CA", self-signed
#   NAME-int      "NAME Intermediate CA", signed by NAME-root
#   NAME          server leaf (as server-ec) signed by NAME-int; NAME.crt
#                 is leaf + NAME-int + NAME-root (three certificates)
#
# Files not listed (CA databases, requests, openssl configs) live in the
# hidden subdirectory .ca of the directory.

use warnings;
use strict;

use File::Path qw/ make_path /;
use File::Spec;
use POSIX qw//;

my $O = 'ngx_dtls test';
my $PASSWORD = 'dtls-test-pass';

sub new {
	my ($class, $dir) = @_;

	die "Test::DTLS::PKI->new(DIR)\n" unless defined $dir;

	# the certificates are made with the openssl command: a test without
	# it skips, as those that run it themselves do

	if (!`openssl version 2>/dev/null`) {
		require Test::More;
		Test::More::plan(skip_all => 'no openssl binary (test certificates)')
			unless Test::More->builder->has_plan;
		die "Test::DTLS::PKI: no openssl binary\n";
	}

	$dir = File::Spec->rel2abs($dir);
	make_path("$dir/.ca");

	my $self = bless { dir => $dir, files => {}, info => {} }, $class;

	$self->generate();

	return $self;
}

sub dir { $_[0]->{dir} }

sub password { $PASSWORD }

sub path {
	my ($self, $name) = @_;

	die "Test::DTLS::PKI: no \"$name\"\n" unless $self->{files}{$name};
	return "$self->{dir}/$name";
}

sub files {
	my ($self) = @_;
	return sort keys %{$self->{files}};
}

# what openssl says of the first certificate of NAME.crt: subject and
# issuer as nginx's $ssl_client_s_dn, $ssl_client_i_dn (RFC 2253),
# serial in upper case hex as $ssl_client_serial, SHA-1 fingerprint in
# lower case hex without colons as $ssl_client_fingerprint, not_after as
# $ssl_client_v_end ("Jan  2 00:00:00 2020 GMT"), not_before

sub info {
	my ($self, $name) = @_;

	return $self->{info}{$name} if $self->{info}{$name};

	my $crt = $self->path("$name.crt");

	my $out = $self->openssl('x509', '-in', $crt, '-noout',
		'-nameopt', 'RFC2253', '-subject', '-issuer', '-serial',
		'-startdate', '-enddate', '-fingerprint', '-sha1');

	my %i;
	$i{subject} = $1 if $out =~ /^subject=\s*(.*)$/m;
	$i{issuer} = $1 if $out =~ /^issuer=\s*(.*)$/m;
	$i{serial} = $1 if $out =~ /^serial=(\S+)$/m;
	$i{not_before} = $1 if $out =~ /^notBefore=(.*)$/m;
	$i{not_after} = $1 if $out =~ /^notAfter=(.*)$/m;

	if ($out =~ /Fingerprint=(\S+)$/m) {
		($i{fingerprint} = lc $1) =~ s/://g;
	}

	return $self->{info}{$name} = \%i;
}

###############################################################################

sub generate {
	my ($self) = @_;

	# CAs

	$self->ca_root('root', 'Test Root CA', '1000');
	$self->ca_root('other', 'Other CA', '3000');

	$self->leaf('int', 'Test Intermediate CA', 'root', 'v3_ca');
	$self->ca_init('int', '2000');

	$self->leaf('int2', 'Test Intermediate 2', 'int', 'v3_ca');
	$self->ca_init('int2', '4000');

	# servers

	$self->leaf('server-ec', 'server-ec', 'int', 'server');
	$self->leaf('server-rsa', 'server-rsa', 'int', 'server', rsa => 1);
	$self->leaf('server-long', 'server-long', 'int2', 'server');

	$self->chain('server-ec', 'int');
	$self->chain('server-rsa', 'int');
	$self->chain('server-long', 'int2', 'int');

	# clients

	$self->leaf('client', 'client-1', 'root', 'client');
	$self->leaf('client-int', 'client-int', 'int', 'client');
	$self->leaf('client-long', 'client-long', 'int2', 'client');
	$self->leaf('client-other', 'client-other', 'other', 'client');
	$self->leaf('client-expired', 'client-expired', 'root', 'client',
		startdate => '20200101000000Z', enddate => '20200102000000Z');
	$self->leaf('client-revoked', 'client-revoked', 'root', 'client');

	$self->chain('client-int', 'int');
	$self->chain('client-long', 'int2', 'int');

	$self->self_signed('client-self', 'client-self', 'client');

	# CRLs

	my $ca = "$self->{dir}/.ca";

	$self->openssl('ca', '-config', "$ca/root.cnf", '-batch',
		'-revoke', $self->path('client-revoked.crt'),
		'-crl_reason', 'keyCompromise');

	for my $name (qw/ root int int2 /) {
		$self->openssl('ca', '-config', "$ca/$name.cnf", '-batch',
			'-gencrl', '-crldays', 30, '-out', "$self->{dir}/$name.crl");
		$self->{files}{"$name.crl"} = 1;
	}

	$self->concat('all.crl', qw/ root.crl int.crl int2.crl /);
	$self->concat('ca-all.crt', qw/ root.crt other.crt /);

	# an encrypted key and its password file

	$self->openssl('pkey', '-in', $self->path('server-ec.key'),
		'-aes256', '-passout', "pass:$PASSWORD",
		'-out', "$self->{dir}/server-ec.enc.key");
	chmod 0600, "$self->{dir}/server-ec.enc.key";
	$self->{files}{'server-ec.enc.key'} = 1;

	$self->put('server.pass', "wrong-password\n$PASSWORD\n", 0600);
}

# on demand: NAME-root, NAME-int and NAME, RSA keys of BITS bits

sub rsa_chain {
	my ($self, $name, $bits) = @_;

	$self->ca_root("$name-root", "$name Root CA", '5000', rsa => $bits);

	$self->leaf("$name-int", "$name Intermediate CA", "$name-root", 'v3_ca',
		rsa => $bits);
	$self->ca_init("$name-int", '6000');

	$self->leaf($name, $name, "$name-int", 'server', rsa => $bits);
	$self->chain($name, "$name-int", "$name-root");

	return $self;
}

# what -newkey makes: EC P-256, or RSA (2048 bits, or as many as rsa says)

sub newkey {
	my (%opts) = @_;

	return ('rsa:' . ($opts{rsa} > 1 ? $opts{rsa} : 2048))
		if $opts{rsa};

	return ('ec', '-pkeyopt', 'ec_paramgen_curve:P-256');
}

# a self-signed CA, with what "openssl ca" needs to sign and revoke

sub ca_root {
	my ($self, $name, $cn, $serial, %opts) = @_;

	$self->ca_init($name, $serial);

	my $ca = "$self->{dir}/.ca";

	$self->openssl('req', '-config', "$ca/$name.cnf", '-x509',
		'-newkey', newkey(%opts), '-nodes',
		'-keyout', "$self->{dir}/$name.key", '-out', "$self->{dir}/$name.crt",
		'-subj', "/O=$O/CN=$cn", '-days', 3650, '-sha256',
		'-extensions', 'v3_ca');

	$self->done($name);
}

sub ca_init {
	my ($self, $name, $serial) = @_;

	my $ca = "$self->{dir}/.ca";
	my $d = "$ca/$name";

	make_path($d);
	$self->put(".ca/$name/index.txt", '');
	$self->put(".ca/$name/serial", "$serial\n");
	$self->put(".ca/$name/crlnumber", "01\n");

	$self->put(".ca/$name.cnf", <<"EOF");
[ ca ]
default_ca = ca_$name

[ ca_$name ]
dir = $d
database = $d/index.txt
new_certs_dir = $d
serial = $d/serial
crlnumber = $d/crlnumber
certificate = $self->{dir}/$name.crt
private_key = $self->{dir}/$name.key
default_md = sha256
default_days = 3650
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
preserve = yes

[ policy_any ]
organizationName = optional
commonName = supplied

[ req ]
distinguished_name = dn
prompt = no

[ dn ]
CN = unused

[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ server ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ client ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

# NAME.key and NAME.crt signed by the CA ISSUER with extensions EXT

sub leaf {
	my ($self, $name, $cn, $issuer, $ext, %opts) = @_;

	my $ca = "$self->{dir}/.ca";
	my $csr = "$ca/$name.csr";

	$self->openssl('req', '-config', "$ca/$issuer.cnf", '-new',
		'-newkey', newkey(%opts),
		'-nodes', '-keyout', "$self->{dir}/$name.key", '-out', $csr,
		'-subj', "/O=$O/CN=$cn");

	$self->openssl('ca', '-config', "$ca/$issuer.cnf", '-batch', '-notext',
		'-in', $csr, '-out', "$self->{dir}/$name.crt",
		'-extensions', $ext,
		$opts{startdate}
			? ('-startdate', $opts{startdate}, '-enddate', $opts{enddate})
			: ('-days', 3650));

	$self->done($name);
}

sub self_signed {
	my ($self, $name, $cn, $ext) = @_;

	my $ca = "$self->{dir}/.ca";

	$self->openssl('req', '-config', "$ca/root.cnf", '-x509',
		'-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
		'-keyout', "$self->{dir}/$name.key", '-out', "$self->{dir}/$name.crt",
		'-subj', "/O=$O/CN=$cn", '-days', 3650, '-sha256',
		'-extensions', $ext);

	$self->done($name);
}

# appends the certificates of CAs to NAME.crt

sub chain {
	my ($self, $name, @cas) = @_;

	my $pem = $self->slurp("$name.crt");
	$pem .= $self->slurp("$_.crt") for @cas;

	$self->put("$name.crt", $pem);
}

sub concat {
	my ($self, $name, @parts) = @_;

	$self->put($name, join '', map { $self->slurp($_) } @parts);
	$self->{files}{$name} = 1;
}

sub done {
	my ($self, $name) = @_;

	die "Test::DTLS::PKI: $name.crt or $name.key not made\n"
		unless -s "$self->{dir}/$name.crt" && -s "$self->{dir}/$name.key";

	chmod 0600, "$self->{dir}/$name.key";
	$self->{files}{"$name.crt"} = 1;
	$self->{files}{"$name.key"} = 1;
}

###############################################################################

# runs openssl, returns its output; dies with it on failure

sub openssl {
	my ($self, @args) = @_;

	pipe(my $r, my $w) or die "pipe: $!\n";

	my $pid = fork();
	die "fork: $!\n" unless defined $pid;

	if ($pid == 0) {
		close $r;
		open STDIN, '<', '/dev/null';
		open STDOUT, '>&', $w;
		open STDERR, '>&', $w;
		$ENV{OPENSSL_CONF} = '/dev/null';
		{ no warnings 'exec'; exec 'openssl', @args; }
		print STDERR "exec openssl: $!\n";
		POSIX::_exit(127);
	}

	close $w;
	local $/;
	my $out = <$r>;
	close $r;
	waitpid($pid, 0);

	die "Test::DTLS::PKI: openssl @args: exit " . ($? >> 8) . "\n"
		. (defined $out ? $out : '') if $?;

	return defined $out ? $out : '';
}

sub slurp {
	my ($self, $name) = @_;

	open my $fh, '<', "$self->{dir}/$name" or die "$name: $!\n";
	local $/;
	my $s = <$fh>;
	return $s;
}

sub put {
	my ($self, $name, $content, $mode) = @_;

	my $path = "$self->{dir}/$name";

	open my $fh, '>', $path or die "$path: $!\n";
	print $fh $content;
	close $fh or die "$path: $!\n";

	chmod $mode, $path if defined $mode;
	$self->{files}{$name} = 1 unless $name =~ m{^\.ca/};
}

1;
