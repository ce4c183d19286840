#include "ctl/cluster_file.h"

#include <criterion/criterion.h>

using kvd::ctl::ParseClusterFile;
using kvd::ctl::ParseClusterList;

Test(cluster_file, env_file_line) {
  auto addresses = ParseClusterFile(
      "# three nodes\nKVD_CLUSTER=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003\n");
  cr_assert(addresses.ok());
  cr_assert_eq(addresses->size(), 3u);
  cr_assert_eq((*addresses)[2], "127.0.0.1:7003");
}

Test(cluster_file, quoted_value_and_other_lines) {
  auto addresses = ParseClusterFile("OTHER=1\nKVD_CLUSTER=\"1=a:1,2=[::1]:2\"\r\n");
  cr_assert(addresses.ok());
  cr_assert_eq((*addresses)[1], "[::1]:2");
}

Test(cluster_file, bare_list) {
  auto addresses = ParseClusterFile("1=h:1,2=h:2\n");
  cr_assert(addresses.ok());
  cr_assert_eq(addresses->size(), 2u);
}

Test(cluster_file, ids_must_be_in_order) {
  cr_assert_not(ParseClusterList("2=h:1,1=h:2").ok());
  cr_assert_not(ParseClusterList("1=h:1,3=h:2").ok());
  cr_assert_not(ParseClusterList("1=").ok());
  cr_assert_not(ParseClusterList("").ok());
  cr_assert_not(ParseClusterFile("# nothing\n").ok());
}
