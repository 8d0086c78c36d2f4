@area:client-server
Feature: Client and server
  Docker is a client-server application: the client talks to the daemon through
  a REST API, over a UNIX socket or a network interface. One client can talk to
  more than one daemon.

  @spec:client-server.ping @smoke
  Scenario: The API answers a ping over the UNIX socket
    When I call "GET /_ping" on the API
    Then the API answers 200
    And the API body is "OK"
    And the API response has the header "Api-Version"

  @spec:client-server.socket-mode
  Scenario: The daemon's UNIX socket is not open to every user
    Then the target's UNIX socket allows no access to other users

  @spec:client-server.ping-head
  Scenario: The ping endpoint also answers HEAD requests
    When I call "HEAD /_ping" on the API
    Then the API answers 200
    And the API response has the header "Api-Version"

  @spec:client-server.version
  Scenario: The API reports its version and platform
    When I call "GET /version" on the API
    Then the API answers 200
    And the API JSON field "ApiVersion" matches "^1\.[0-9]+$"
    And the API JSON field "Os" is "linux"

  @spec:client-server.versioned-path
  Scenario: Requests may carry the API version in the path
    When I call "GET /v{api_version}/version" on the API
    Then the API answers 200
    And the API JSON field "ApiVersion" is "{api_version}"

  @spec:client-server.error-json
  Scenario: Errors are JSON objects with a message
    When I call "GET /containers/{c}/json" on the API
    Then the API answers 404
    And the API response header "Content-Type" is "application/json"
    And the API JSON field "message" contains "{c}"

  @spec:client-server.cli-version
  Scenario: The CLI shows both the client and the server version
    When I run "version"
    Then it succeeds
    And the output contains "Client"
    And the output contains "Server"

  @spec:client-server.info
  Scenario: The daemon reports the objects it manages
    Given I successfully run "create --name {c} {busybox} true"
    When I call "GET /info" on the API
    Then the API answers 200
    And the API JSON field "Containers" is at least 1
    And the API JSON field "OSType" is "linux"

  @spec:client-server.tcp @needs:tcp-endpoint
  Scenario: The API answers over TCP where the daemon listens on a network interface
    Given a second daemon is running
    When I call "GET /_ping" on the second daemon's TCP endpoint
    Then the API answers 200
    And the API body is "OK"

  @spec:client-server.two-daemons @needs:second-daemon
  Scenario: One client addresses two daemons
    Given a second daemon is running
    And I successfully run "create --name {c} {busybox} true"
    When I run "ps -a --format {{.Names}}" against the second daemon
    Then it succeeds
    And the output does not contain "{c}"
    When I run "ps -a --format {{.Names}}"
    Then the output contains "{c}"
