@area:storage-network
Feature: Volumes and networks
  A container can be connected to one or more networks and have storage
  attached. Volumes are the preferred way to persist data: a named volume
  outlives the containers that use it; a bind mount makes a host path visible
  inside the container. On a user-defined network containers find each other
  by name.

  @spec:storage.named-volume-outlives
  Scenario: A named volume outlives its container
    Given I successfully run "volume create {vol}"
    And I successfully run "run --name {c} -v {vol}:/data {busybox} sh -c 'echo persisted > /data/file'"
    And I successfully run "rm {c}"
    When I run "run --rm -v {vol}:/data {busybox} cat /data/file"
    Then it succeeds
    And the output is "persisted"

  @spec:storage.volume-ls-rm
  Scenario: Volumes are listed, inspected and removed
    Given I successfully run "volume create {vol}"
    When I run "volume ls -q"
    Then the output contains "{vol}"
    And the field "Name" of volume "{vol}" is "{vol}"
    When I run "volume rm {vol}"
    Then it succeeds
    When I run "volume ls -q"
    Then the output does not contain "{vol}"

  @spec:storage.volume-in-use
  Scenario: A volume in use by a container cannot be removed
    Given I successfully run "volume create {vol}"
    And I successfully run "create --name {c} -v {vol}:/data {busybox} true"
    When I run "volume rm {vol}"
    Then it fails
    And the error output matches "(in use|being used)"

  @spec:storage.volume-copy-up
  Scenario: An empty named volume is filled with the image's content at its mount point
    When I run "run --rm -v {vol}:/etc {busybox} cat /etc/passwd"
    Then it succeeds
    And the output contains "root:x:0:0"

  @spec:storage.bind-mount
  Scenario: A bind mount shares a host directory with the container
    Given the host file "{tmp}/shared/from-host.txt" contains "hello from the host"
    When I run "run --rm -v {tmp}/shared:/shared {busybox} sh -c 'cat /shared/from-host.txt; echo back > /shared/from-container.txt'"
    Then it succeeds
    And the output is "hello from the host"
    And the host file "{tmp}/shared/from-container.txt" contains "back"

  @spec:storage.bind-mount-ro
  Scenario: A read-only bind mount refuses writes
    Given the host file "{tmp}/ro/file.txt" contains "x"
    When I run "run --rm -v {tmp}/ro:/ro:ro {busybox} touch /ro/new"
    Then it fails
    And the error output contains "Read-only file system"

  @spec:storage.anonymous-volume
  Scenario: An anonymous volume is removed with its container by rm -v
    Given I successfully run "create --name {c} -v /scratch {busybox} true"
    And I remember the mount source volume of "{c}" at "/scratch" as "anon"
    When I successfully run "rm -v {c}"
    Then the volume "{$anon}" does not exist

  @spec:network.user-defined-dns @needs:bridge-network
  Scenario: Containers on a user-defined network reach each other by name
    Given I successfully run "network create {net}"
    And I successfully run "run -d --name {c} --network {net} {busybox} sleep 600"
    When I run "run --rm --network {net} {busybox} ping -c 1 -W 5 {c}"
    Then it succeeds
    And the output contains "1 packets received"

  @spec:network.second-network @needs:bridge-network
  Scenario: A container connected to a second network has an interface on each
    Given I successfully run "network create {net}"
    And I successfully run "network create {net2}"
    And I remember the subnet of network "{net}" as "subnet1"
    And I remember the subnet of network "{net2}" as "subnet2"
    And I successfully run "run -d --name {c} --network {net} {busybox} sleep 600"
    When I successfully run "network connect {net2} {c}"
    And I run "exec {c} ip -4 -o addr"
    Then the output contains an address in "{$subnet1}"
    And the output contains an address in "{$subnet2}"

  @spec:network.disconnect @needs:bridge-network
  Scenario: Disconnecting a container removes its interface on that network
    Given I successfully run "network create {net}"
    And I remember the subnet of network "{net}" as "subnet"
    And I successfully run "run -d --name {c} {busybox} sleep 600"
    And I successfully run "network connect {net} {c}"
    When I successfully run "network disconnect {net} {c}"
    And I run "exec {c} ip -4 -o addr"
    Then it succeeds
    And the output does not contain an address in "{$subnet}"

  @spec:network.default-no-dns @needs:bridge-network
  Scenario: On the default bridge network containers are not resolved by name
    Given I successfully run "run -d --name {c} {busybox} sleep 600"
    When I run "run --rm {busybox} ping -c 1 -W 2 {c}"
    Then it fails

  @spec:network.ls-inspect
  Scenario: A created network is listed and inspected with its subnet
    Given I successfully run "network create --subnet 10.231.{octet}.0/24 {net}"
    When I run "network ls --format {{.Name}}"
    Then the output contains "{net}"
    And the subnet of network "{net}" is "10.231.{octet}.0/24"

  @spec:network.publish-port @needs:bridge-network
  Scenario: A published port is reachable on the host's own address and on 127.0.0.1
    Given I successfully run "run -d --name {c} -p 80 {busybox} nc -ll -p 80 -e echo hello from the container"
    And I remember the field "NetworkSettings.Ports.80/tcp.0.HostPort" of "{c}" as "port"
    Then a TCP connection to the host's own address on port "{$port}" receives "hello from the container"
    And a TCP connection to "127.0.0.1" on port "{$port}" receives "hello from the container"
