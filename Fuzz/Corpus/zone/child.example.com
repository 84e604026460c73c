$ORIGIN child.example.com.
$TTL 300
@       IN SOA  ns1 hostmaster 7 3600 600 86400 60
        IN NS   ns1
ns1     IN A    192.0.2.170
www     IN A    192.0.2.171
