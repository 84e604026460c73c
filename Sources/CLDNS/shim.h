#include <stdio.h>
#include <stdio_ext.h>
#include <ldns/ldns.h>
