"""Running a real PowerDNS Authoritative server for the DNS integration tests and benchmarks."""
