# HeraldShard.pm - nginx embedded-Perl rendition of common/wire/shard.c: which gateway a user
# belongs to (rendezvous hashing; the algorithm is written out at the top of shard.c and
# must stay bit-identical to it, tests/integration/test_nginx.sh checks that it is).
#
# 64-bit arithmetic: under "use integer" + and * wrap modulo 2^64 like C's uint64_t, and
# ^ is the same bit pattern, but >> is an arithmetic (sign-extending) shift and < compares
# signed. So every right shift is masked back to a logical shift (srl) and weights are
# compared with their sign bit flipped (uless).
package HeraldShard;

use strict;
use warnings;
no warnings 'portable';    # the 64-bit hex constants below are the point
use integer;

use MIME::Base64 ();
use JSON::PP ();

use constant {
    GOLDEN  => 0x9e3779b97f4a7c15,
    SEED    => 0x243f6a8885a308d3,
    MUL1    => 0xbf58476d1ce4e5b9,
    MUL2    => 0x94d049bb133111eb,
    SIGN    => 1 << 63,
    MAX_ID  => 64,    # HERALD_MAX_ID_LEN: the gateway refuses longer user ids
};

# Logical right shift of a 64-bit pattern by 1..63 bits.
sub srl {
    my ($z, $s) = @_;
    return ($z >> $s) & ((1 << (64 - $s)) - 1);
}

# Unsigned a < b on 64-bit patterns.
sub uless {
    my ($x, $y) = @_;
    return ($x ^ SIGN) < ($y ^ SIGN);
}

sub mix {
    my ($z) = @_;
    $z ^= srl($z, 30);
    $z *= MUL1;
    $z ^= srl($z, 27);
    $z *= MUL2;
    $z ^= srl($z, 31);
    return $z;
}

# hash(user) over the user id's bytes, 8-byte little-endian chunks, the last zero-padded.
sub hash_user {
    my ($user) = @_;
    my $len = length $user;
    my $h = SEED ^ ($len * GOLDEN);
    for (my $off = 0; $off < $len; $off += 8) {
        my $chunk = unpack 'Q<', pack('a8', substr($user, $off, 8));
        $h = mix($h ^ $chunk);
    }
    return $h;
}

# shard_gateway(user, count): the gateway id in [0, count) with the highest weight, the
# lower id on a tie. $user must be a byte string.
sub gateway_of {
    my ($user, $count) = @_;
    my $h = hash_user($user);
    my $best = 0;
    my $best_w = mix($h ^ mix(0 + GOLDEN));
    for my $g (1 .. $count - 1) {
        my $w = mix($h ^ mix($g + GOLDEN));
        if (uless($best_w, $w)) {    # strict: a tie keeps the lower id
            $best = $g;
            $best_w = $w;
        }
    }
    return $best;
}

# The claimed user of a request, NOT verified (the gateway verifies the token; a client
# that lies here only lands on a gateway that is not its own, which SPEC 8 allows): the
# JWT payload's sub (token query parameter or Authorization: Bearer), else the user query
# parameter. Returns a byte string, or undef when there is none.
sub claimed_user {
    my ($r) = @_;
    my $token = query_arg($r, 'token');
    if (!defined $token) {
        my $auth = $r->header_in('Authorization');
        $token = $1 if defined $auth && $auth =~ /^Bearer\s+(\S+)/i;
    }
    my $sub = defined $token ? token_sub($token) : undef;
    $sub = query_arg($r, 'user') if !defined $sub;
    return undef if !defined $sub || $sub eq '' || length $sub > MAX_ID;
    return $sub;
}

# The sub claim of a JWT, decoded but not verified, as UTF-8 bytes; undef if unreadable.
sub token_sub {
    my ($token) = @_;
    my @parts = split /\./, $token, -1;
    return undef if @parts != 3 || $parts[1] !~ /^[A-Za-z0-9_-]+$/;
    my $claims = eval { JSON::PP::decode_json(MIME::Base64::decode_base64url($parts[1])) };
    return undef if ref $claims ne 'HASH' || !defined $claims->{sub} || ref $claims->{sub};
    my $sub = "$claims->{sub}";
    utf8::encode($sub);
    return $sub;
}

# The first value of query parameter $name, percent-decoded ('+' is a space, as in form
# encoding: send a literal '+' as %2B), or undef.
sub query_arg {
    my ($r, $name) = @_;
    my $args = $r->args;
    return undef if !defined $args;
    for my $pair (split /&/, $args) {
        my ($k, $v) = split /=/, $pair, 2;
        next if !defined $v || $k ne $name;
        $v =~ tr/+/ /;
        $v =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
        return $v;
    }
    return undef;
}

# For perl_set: the gateway id of the request's claimed user among $count gateways, or
# "any" when the request names no user (nginx then balances over all gateways; the
# gateway answers 401 to a request without a valid token anyway).
sub route {
    my ($r, $count) = @_;
    my $user = claimed_user($r);
    return 'any' if !defined $user;
    return gateway_of($user, $count);
}

1;
