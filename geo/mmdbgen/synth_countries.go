package mmdbgen

// The static tables of the synthetic database model (see Synth).

// rir is a regional Internet registry: it hands out address space to the
// countries it serves, so a country's networks sit in its registry's part of
// the address space.
type rir uint8

const (
	arin rir = iota
	apnic
	ripe
	lacnic
	afrinic
	numRIRs
)

// synthCountry is one country of the model.
type synthCountry struct {
	code      string  // ISO 3166-1 alpha-2
	continent string  // GeoIP2 continent code
	rir       rir     // the registry its address space comes from
	lat, lon  float64 // approximate centroid (as in geo/centroids.go, which mmdbgen may not import)
	radius    float64 // degrees: how far from the centroid its places scatter
	weight    float64 // its share of networks, per mille, roughly as in GeoLite2-City
}

// synthCountries are the countries networks are spread over, ordered by
// registry. Weights approximate each country's share of GeoLite2-City
// networks: the United States holds about a third, a few dozen countries
// most of the rest, and a long tail little each; radius stands for the
// country's extent, so that "nearest region" answers vary inside big
// countries and not inside small ones. Continents are MaxMind's
// (GeoNames'): Turkey and the Middle East are AS, Russia EU, Mexico and
// Central America NA.
var synthCountries = [...]synthCountry{
	{"US", "NA", arin, 39.8, -98.6, 11, 380},     // United States
	{"CA", "NA", arin, 56.1, -106.3, 8, 25},      // Canada
	{"PR", "NA", arin, 18.2, -66.6, 0.4, 1},      // Puerto Rico
	{"JM", "NA", arin, 18.1, -77.3, 0.5, 0.5},    // Jamaica
	{"BS", "NA", arin, 24.3, -76.0, 1, 0.3},      // Bahamas
	{"BB", "NA", arin, 13.2, -59.5, 0.1, 0.2},    // Barbados
	{"BM", "NA", arin, 32.3, -64.8, 0.1, 0.2},    // Bermuda
	{"CN", "AS", apnic, 35.9, 104.2, 9, 60},      // China
	{"JP", "AS", apnic, 36.2, 138.3, 4, 45},      // Japan
	{"KR", "AS", apnic, 35.9, 127.8, 1.5, 25},    // Korea, Republic of
	{"IN", "AS", apnic, 20.6, 79.0, 7, 25},       // India
	{"AU", "OC", apnic, -25.3, 133.8, 9, 20},     // Australia
	{"TW", "AS", apnic, 23.7, 121.0, 1, 12},      // Taiwan
	{"VN", "AS", apnic, 14.1, 108.3, 3, 8},       // Viet Nam
	{"ID", "AS", apnic, -0.8, 113.9, 8, 8},       // Indonesia
	{"TH", "AS", apnic, 15.9, 101.0, 3, 6},       // Thailand
	{"HK", "AS", apnic, 22.4, 114.1, 0.1, 6},     // Hong Kong
	{"SG", "AS", apnic, 1.35, 103.8, 0.1, 5},     // Singapore
	{"PH", "AS", apnic, 12.9, 121.8, 3, 4},       // Philippines
	{"MY", "AS", apnic, 4.2, 102.0, 3, 4},        // Malaysia
	{"NZ", "OC", apnic, -40.9, 174.9, 3, 3},      // New Zealand
	{"PK", "AS", apnic, 30.4, 69.3, 4, 2},        // Pakistan
	{"BD", "AS", apnic, 23.7, 90.4, 2, 2},        // Bangladesh
	{"LK", "AS", apnic, 7.9, 80.8, 1, 0.5},       // Sri Lanka
	{"NP", "AS", apnic, 28.4, 84.1, 1.5, 0.5},    // Nepal
	{"KH", "AS", apnic, 12.6, 105.0, 1.5, 0.3},   // Cambodia
	{"MM", "AS", apnic, 21.9, 96.0, 3, 0.3},      // Myanmar
	{"MN", "AS", apnic, 46.9, 103.8, 5, 0.3},     // Mongolia
	{"MO", "AS", apnic, 22.2, 113.5, 0.05, 0.3},  // Macao
	{"FJ", "OC", apnic, -17.7, 178.1, 1, 0.1},    // Fiji
	{"PG", "OC", apnic, -6.3, 144.0, 3, 0.1},     // Papua New Guinea
	{"DE", "EU", ripe, 51.2, 10.5, 3, 45},        // Germany
	{"GB", "EU", ripe, 55.4, -3.4, 2.5, 40},      // United Kingdom
	{"FR", "EU", ripe, 46.2, 2.2, 3.5, 30},       // France
	{"RU", "EU", ripe, 61.5, 105.3, 15, 30},      // Russian Federation
	{"NL", "EU", ripe, 52.1, 5.3, 1, 25},         // Netherlands
	{"IT", "EU", ripe, 41.9, 12.6, 3.5, 20},      // Italy
	{"ES", "EU", ripe, 40.5, -3.7, 3.5, 15},      // Spain
	{"PL", "EU", ripe, 51.9, 19.1, 3, 12},        // Poland
	{"SE", "EU", ripe, 60.1, 18.6, 4, 10},        // Sweden
	{"UA", "EU", ripe, 48.4, 31.2, 4, 8},         // Ukraine
	{"TR", "AS", ripe, 39.0, 35.2, 4, 8},         // Türkiye
	{"CH", "EU", ripe, 46.8, 8.2, 1, 7},          // Switzerland
	{"CZ", "EU", ripe, 49.8, 15.5, 1.5, 6},       // Czechia
	{"RO", "EU", ripe, 45.9, 25.0, 2.5, 6},       // Romania
	{"IR", "AS", ripe, 32.4, 53.7, 5, 6},         // Iran
	{"BE", "EU", ripe, 50.5, 4.5, 1, 5},          // Belgium
	{"AT", "EU", ripe, 47.5, 14.6, 1.5, 5},       // Austria
	{"NO", "EU", ripe, 60.5, 8.5, 4, 5},          // Norway
	{"DK", "EU", ripe, 56.3, 9.5, 1.2, 5},        // Denmark
	{"FI", "EU", ripe, 61.9, 25.7, 3, 4},         // Finland
	{"IL", "AS", ripe, 31.0, 34.9, 1, 4},         // Israel
	{"SA", "AS", ripe, 23.9, 45.1, 6, 3},         // Saudi Arabia
	{"AE", "AS", ripe, 23.9, 54.0, 1.5, 3},       // United Arab Emirates
	{"PT", "EU", ripe, 39.4, -8.2, 1.5, 3},       // Portugal
	{"GR", "EU", ripe, 39.1, 21.8, 2, 3},         // Greece
	{"HU", "EU", ripe, 47.2, 19.5, 1.5, 3},       // Hungary
	{"BG", "EU", ripe, 42.7, 25.5, 1.5, 3},       // Bulgaria
	{"IE", "EU", ripe, 53.4, -8.2, 1.5, 3},       // Ireland
	{"KZ", "AS", ripe, 48.0, 66.9, 8, 2},         // Kazakhstan
	{"SK", "EU", ripe, 48.7, 19.7, 1.2, 2},       // Slovakia
	{"RS", "EU", ripe, 44.0, 21.0, 1.2, 1.5},     // Serbia
	{"LT", "EU", ripe, 55.2, 23.9, 1, 1.5},       // Lithuania
	{"LV", "EU", ripe, 56.9, 24.6, 1, 1.5},       // Latvia
	{"EE", "EU", ripe, 58.6, 25.0, 1, 1},         // Estonia
	{"SI", "EU", ripe, 46.2, 15.0, 0.6, 1},       // Slovenia
	{"HR", "EU", ripe, 45.1, 15.2, 1.2, 1},       // Croatia
	{"BY", "EU", ripe, 53.7, 28.0, 2.5, 1},       // Belarus
	{"IQ", "AS", ripe, 33.2, 43.7, 3, 1},         // Iraq
	{"GE", "AS", ripe, 42.3, 43.4, 1.2, 0.6},     // Georgia
	{"AZ", "AS", ripe, 40.1, 47.6, 1.2, 0.6},     // Azerbaijan
	{"LU", "EU", ripe, 49.8, 6.1, 0.2, 0.6},      // Luxembourg
	{"AM", "AS", ripe, 40.1, 45.0, 0.8, 0.5},     // Armenia
	{"UZ", "AS", ripe, 41.4, 64.6, 3, 0.5},       // Uzbekistan
	{"MD", "EU", ripe, 47.4, 28.4, 0.8, 0.5},     // Moldova
	{"JO", "AS", ripe, 30.6, 36.2, 1, 0.5},       // Jordan
	{"KW", "AS", ripe, 29.3, 47.5, 0.5, 0.5},     // Kuwait
	{"BA", "EU", ripe, 43.9, 17.7, 1, 0.4},       // Bosnia and Herzegovina
	{"LB", "AS", ripe, 33.9, 35.9, 0.5, 0.4},     // Lebanon
	{"QA", "AS", ripe, 25.4, 51.2, 0.4, 0.4},     // Qatar
	{"MK", "EU", ripe, 41.6, 21.7, 0.6, 0.3},     // North Macedonia
	{"AL", "EU", ripe, 41.2, 20.2, 0.7, 0.3},     // Albania
	{"IS", "EU", ripe, 65.0, -19.0, 1.5, 0.3},    // Iceland
	{"OM", "AS", ripe, 21.5, 55.9, 2.5, 0.3},     // Oman
	{"PS", "AS", ripe, 31.9, 35.2, 0.3, 0.3},     // Palestine, State of
	{"BH", "AS", ripe, 26.0, 50.6, 0.2, 0.2},     // Bahrain
	{"SY", "AS", ripe, 34.8, 39.0, 1.5, 0.2},     // Syrian Arab Republic
	{"MT", "EU", ripe, 35.9, 14.4, 0.1, 0.2},     // Malta
	{"BR", "SA", lacnic, -14.2, -51.9, 9, 40},    // Brazil
	{"MX", "NA", lacnic, 23.6, -102.6, 6, 12},    // Mexico
	{"AR", "SA", lacnic, -38.4, -63.6, 7, 8},     // Argentina
	{"CO", "SA", lacnic, 4.6, -74.3, 3.5, 6},     // Colombia
	{"CL", "SA", lacnic, -35.7, -71.5, 6, 5},     // Chile
	{"PE", "SA", lacnic, -9.2, -75.0, 4, 3},      // Peru
	{"VE", "SA", lacnic, 6.4, -66.6, 3.5, 2},     // Venezuela
	{"EC", "SA", lacnic, -1.8, -78.2, 2, 2},      // Ecuador
	{"UY", "SA", lacnic, -32.5, -55.8, 1.2, 1},   // Uruguay
	{"CR", "NA", lacnic, 9.7, -83.8, 0.8, 1},     // Costa Rica
	{"DO", "NA", lacnic, 18.7, -70.2, 0.8, 0.8},  // Dominican Republic
	{"PA", "NA", lacnic, 8.5, -80.8, 1, 0.8},     // Panama
	{"GT", "NA", lacnic, 15.8, -90.2, 1, 0.6},    // Guatemala
	{"BO", "SA", lacnic, -16.3, -63.6, 4, 0.6},   // Bolivia
	{"PY", "SA", lacnic, -23.4, -58.4, 2.5, 0.6}, // Paraguay
	{"HN", "NA", lacnic, 15.2, -86.2, 1.2, 0.4},  // Honduras
	{"SV", "NA", lacnic, 13.8, -88.9, 0.5, 0.4},  // El Salvador
	{"TT", "NA", lacnic, 10.7, -61.2, 0.3, 0.4},  // Trinidad and Tobago
	{"NI", "NA", lacnic, 12.9, -85.2, 1.2, 0.3},  // Nicaragua
	{"CU", "NA", lacnic, 21.5, -77.8, 2, 0.2},    // Cuba
	{"ZA", "AF", afrinic, -30.6, 22.9, 5, 8},     // South Africa
	{"EG", "AF", afrinic, 26.8, 30.8, 3, 4},      // Egypt
	{"NG", "AF", afrinic, 9.1, 8.7, 4, 2},        // Nigeria
	{"KE", "AF", afrinic, 0.0, 37.9, 3, 2},       // Kenya
	{"MA", "AF", afrinic, 31.8, -7.1, 3, 2},      // Morocco
	{"DZ", "AF", afrinic, 28.0, 1.7, 6, 1.5},     // Algeria
	{"TN", "AF", afrinic, 33.9, 9.5, 1.5, 1.2},   // Tunisia
	{"GH", "AF", afrinic, 7.9, -1.0, 2, 0.6},     // Ghana
	{"TZ", "AF", afrinic, -6.4, 34.9, 4, 0.5},    // Tanzania
	{"UG", "AF", afrinic, 1.4, 32.3, 2, 0.4},     // Uganda
	{"AO", "AF", afrinic, -11.2, 17.9, 5, 0.4},   // Angola
	{"CI", "AF", afrinic, 7.5, -5.5, 2, 0.4},     // Côte d'Ivoire
	{"SN", "AF", afrinic, 14.5, -14.5, 2, 0.4},   // Senegal
	{"ET", "AF", afrinic, 9.1, 40.5, 4, 0.3},     // Ethiopia
	{"CM", "AF", afrinic, 7.4, 12.4, 3, 0.3},     // Cameroon
	{"ZW", "AF", afrinic, -19.0, 29.2, 2.5, 0.3}, // Zimbabwe
	{"MU", "AF", afrinic, -20.3, 57.6, 0.3, 0.3}, // Mauritius
	{"LY", "AF", afrinic, 26.3, 17.2, 5, 0.3},    // Libya
	{"SD", "AF", afrinic, 15.5, 30.2, 5, 0.3},    // Sudan
	{"ZM", "AF", afrinic, -13.1, 27.8, 3, 0.2},   // Zambia
	{"MZ", "AF", afrinic, -18.7, 35.5, 4, 0.2},   // Mozambique
	{"RW", "AF", afrinic, -1.9, 29.9, 0.7, 0.2},  // Rwanda
}

// ipv4RIRs says which registry administers each IPv4 /8, roughly as in
// IANA's IPv4 address space registry (a legacy /8 goes with the registry
// that serves most of its holders). /8s it leaves out hold no public
// unicast networks: 0/8, 10/8, 127/8, multicast and the reserved 240/4.
// Ascending; a test checks the ranges do not overlap.
var ipv4RIRs = [...]struct {
	from, to uint8 // first octets, inclusive
	rir      rir
}{
	{1, 1, apnic}, {2, 2, ripe}, {3, 4, arin}, {5, 5, ripe}, {6, 9, arin},
	{11, 13, arin}, {14, 14, apnic}, {15, 24, arin}, {25, 25, ripe}, {26, 26, arin},
	{27, 27, apnic}, {28, 30, arin}, {31, 31, ripe}, {32, 35, arin}, {36, 36, apnic},
	{37, 37, ripe}, {38, 38, arin}, {39, 39, apnic}, {40, 40, arin}, {41, 41, afrinic},
	{42, 43, apnic}, {44, 45, arin}, {46, 46, ripe}, {47, 48, arin}, {49, 49, apnic},
	{50, 50, arin}, {51, 51, ripe}, {52, 56, arin}, {57, 57, ripe}, {58, 61, apnic},
	{62, 62, ripe}, {63, 76, arin}, {77, 95, ripe}, {96, 100, arin}, {101, 101, apnic},
	{102, 102, afrinic}, {103, 103, apnic}, {104, 104, arin}, {105, 105, afrinic},
	{106, 106, apnic}, {107, 108, arin}, {109, 109, ripe}, {110, 126, apnic},
	{128, 132, arin}, {133, 133, apnic}, {134, 149, arin}, {150, 150, apnic},
	{151, 151, ripe}, {152, 162, arin}, {163, 163, apnic}, {164, 174, arin},
	{175, 175, apnic}, {176, 176, ripe}, {177, 177, lacnic}, {178, 178, ripe},
	{179, 179, lacnic}, {180, 183, apnic}, {184, 184, arin}, {185, 185, ripe},
	{186, 187, lacnic}, {188, 188, ripe}, {189, 191, lacnic}, {192, 192, arin},
	{193, 195, ripe}, {196, 197, afrinic}, {198, 199, arin}, {200, 201, lacnic},
	{202, 203, apnic}, {204, 209, arin}, {210, 211, apnic}, {212, 213, ripe},
	{214, 216, arin}, {217, 217, ripe}, {218, 223, apnic},
}

// ipv4Reserved are the special-purpose networks inside the /8s of ipv4RIRs
// (IANA's special-purpose registry, as mmdbwriter lists them): no synthetic
// network touches them.
var ipv4Reserved = [...]struct {
	addr uint32
	bits int
}{
	{100<<24 | 64<<16, 10},          // 100.64.0.0/10, shared address space
	{169<<24 | 254<<16, 16},         // 169.254.0.0/16, link local
	{172<<24 | 16<<16, 12},          // 172.16.0.0/12, private
	{192 << 24, 24},                 // 192.0.0.0/24, IETF protocol assignments
	{192<<24 | 2<<8, 24},            // 192.0.2.0/24, documentation
	{192<<24 | 88<<16 | 99<<8, 24},  // 192.88.99.0/24, 6to4 relay anycast
	{192<<24 | 168<<16, 16},         // 192.168.0.0/16, private
	{198<<24 | 18<<16, 15},          // 198.18.0.0/15, benchmarking
	{198<<24 | 51<<16 | 100<<8, 24}, // 198.51.100.0/24, documentation
	{203<<24 | 0<<16 | 113<<8, 24},  // 203.0.113.0/24, documentation
}

// ipv6RIRs is the /12 each registry hands its IPv6 allocations out of
// (top 16 bits of the address): each has others, but these hold most.
var ipv6RIRs = [numRIRs]uint16{
	arin:    0x2600,
	apnic:   0x2400,
	ripe:    0x2a00,
	lacnic:  0x2800,
	afrinic: 0x2c00,
}
