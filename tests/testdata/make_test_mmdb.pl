#!/usr/bin/perl
# Writes the small MaxMind DB files the geo unit tests read, so the tests
# know exactly what each database holds:
#   maxmind.mmdb    MaxMind/DB-IP schema (country.iso_code, falling back to
#                   registered_country.iso_code), IPv6 tree with IPv4 aliased
#   flat.mmdb       ip-location-db flat schema (country_code), IPv6 tree
#   ipv4-only.mmdb  flat schema, IPv4 tree, so IPv6 lookups must fail
#   asn.mmdb        GeoLite2-ASN schema (autonomous_system_number and
#                   _organization), as DB-IP's and the bundled one use
#   ipinfo-asn.mmdb ipinfo's schema (asn "AS15169", as_name or name)
#   no-date.mmdb    flat schema, build epoch 2^64 - 1 (as libmaxminddb's own
#                   test file has): no date
# Usage: make_test_mmdb.pl OUTPUT_DIR
# The networks and countries below are asserted by exporter/geo/*_test.cc;
# change both together.
use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

die "usage: $0 OUTPUT_DIR\n" unless @ARGV == 1 && -d $ARGV[0];
my $out_dir = $ARGV[0];

# A fixed build time, so tests can assert the metadata.
my $build_epoch = 1700000000;

# Maps and arrays keep their type; all-digit strings become uint32 (so a
# record can hold a malformed, numeric iso_code); anything else is a string.
sub value_type {
    my ( $key, $value ) = @_;
    return 'map' if ref $value eq 'HASH';
    return 'uint32' if $value =~ /\A[0-9]+\z/;
    return 'utf8_string';
}

sub write_db {
    my (%args) = @_;
    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version               => $args{ip_version},
        record_size              => 24,
        database_type            => $args{type},
        languages                => ['en'],
        description              => { en => 'ebpf_geoip_exporter test data' },
        map_key_type_callback    => \&value_type,
        merge_strategy           => 'none',
        alias_ipv6_to_ipv4       => $args{ip_version} == 6 ? 1 : 0,
        # Keep 10.0.0.0/8: the tests check that the classifier, not the
        # database, decides that private addresses are private.
        remove_reserved_networks => 0,
        _build_epoch             => $args{build_epoch} // $build_epoch,
    );
    for my $entry ( @{ $args{networks} } ) {
        $tree->insert_network( $entry->[0], $entry->[1] );
    }
    my $path = "$out_dir/$args{file}";
    open my $fh, '>:raw', "$path.tmp" or die "cannot write $path.tmp: $!\n";
    $tree->write_tree($fh);
    close $fh or die "cannot write $path.tmp: $!\n";
    rename "$path.tmp", $path or die "cannot rename to $path: $!\n";
}

sub country {
    my ($code) = @_;
    return { iso_code => $code, names => { en => "Country $code" } };
}

write_db(
    file       => 'maxmind.mmdb',
    type       => 'GeoLite2-Country',
    ip_version => 6,
    networks   => [
        [ '81.2.69.0/24', { country => country('GB'),
                            registered_country => country('GB') } ],
        # Where they differ, country (where the address is) wins over
        # registered_country (who registered it).
        [ '89.160.20.0/24', { country => country('SE'),
                              registered_country => country('DE') } ],
        # Only registered_country, as for anonymous proxies and satellite
        # providers in GeoLite2.
        [ '67.43.156.0/24', { registered_country => country('BT') } ],
        # Neither: only a continent.
        [ '202.196.224.0/20', { continent => { code => 'AS' } } ],
        [ '10.0.0.0/8', { country => country('FR') } ],
        # Malformed: country is a string, not a map.
        [ '6.6.6.0/24', { country => 'GB' } ],
        # Malformed: iso_code is a number.
        [ '5.5.5.0/24', { country => { iso_code => 42 } } ],
        [ '2001:218::/32', { country => country('JP'),
                             registered_country => country('JP') } ],
        [ '2a02:d300::/29', { registered_country => country('UA') } ],
        [ '2c0f:ff00::/26', { continent => { code => 'AF' } } ],
    ],
);

write_db(
    file       => 'flat.mmdb',
    type       => 'country ipvAll',
    ip_version => 6,
    networks   => [
        [ '138.100.0.0/16', { country_code => 'ES' } ],
        [ '8.8.8.0/24', { country_code => 'US' } ],
        # Lower case, which the reader must accept.
        [ '81.2.69.0/24', { country_code => 'gb' } ],
        # A record without a country.
        [ '1.1.1.0/24', { autonomous_system => 'AS13335' } ],
        # Malformed: not a two-letter code; a number.
        [ '7.7.7.0/24', { country_code => 'USA' } ],
        [ '5.5.5.0/24', { country_code => 42 } ],
        [ '2001:4860::/32', { country_code => 'US' } ],
        [ '2a00:1450::/32', { country_code => 'IE' } ],
    ],
);

write_db(
    file       => 'ipv4-only.mmdb',
    type       => 'country ipv4',
    ip_version => 4,
    networks   => [ [ '8.8.8.0/24', { country_code => 'US' } ] ],
);

write_db(
    file       => 'asn.mmdb',
    type       => 'GeoLite2-ASN',
    ip_version => 6,
    networks   => [
        [ '81.2.69.0/24', { autonomous_system_number => '20712',
                            autonomous_system_organization => 'Andrews & Arnold Ltd' } ],
        [ '1.1.1.0/24', { autonomous_system_number => '13335',
                          autonomous_system_organization => 'Cloudflare, Inc.' } ],
        # A number without a name.
        [ '89.160.20.0/24', { autonomous_system_number => '29518' } ],
        # Neither: a record without an AS.
        [ '202.196.224.0/20', { country_code => 'PH' } ],
        # Malformed: the number is text.
        [ '5.5.5.0/24', { autonomous_system_number => 'many' } ],
        [ '2001:4860::/32', { autonomous_system_number => '15169',
                              autonomous_system_organization => 'Google LLC' } ],
    ],
);

write_db(
    file       => 'ipinfo-asn.mmdb',
    type       => 'ipinfo asn.mmdb',
    ip_version => 6,
    networks   => [
        [ '8.8.8.0/24', { asn => 'AS15169', name => 'Google LLC', domain => 'google.com' } ],
        [ '81.2.69.0/24', { asn => 'AS20712', as_name => 'Andrews & Arnold Ltd' } ],
        # Malformed: not ASnnn.
        [ '7.7.7.0/24', { asn => 'ASX' } ],
    ],
);

write_db(
    file        => 'no-date.mmdb',
    type        => 'country ipvAll',
    ip_version  => 6,
    build_epoch => '18446744073709551615',
    networks    => [ [ '8.8.8.0/24', { country_code => 'US' } ] ],
);
