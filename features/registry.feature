@area:registry
Feature: Registries
  A Docker registry stores Docker images. When you use docker pull or docker
  run, Docker pulls the required images from your configured registry; when
  you use docker push, Docker pushes your image to it.

  Background:
    Given the image "busybox" is present locally

  @spec:registry.push-pull-tag
  Scenario: An image pushed to a registry can be removed locally and pulled back by tag
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      RUN echo pushed-content > /pushed.txt
      """
    And I successfully run "build -t {registry}/{img}:v1 {ctx}"
    And I remember the field "Id" of "{registry}/{img}:v1" as "image_id"
    When I run "push {registry}/{img}:v1"
    Then it succeeds
    When I successfully run "rmi {registry}/{img}:v1"
    And I run "pull {registry}/{img}:v1"
    Then it succeeds
    And the field "Id" of "{registry}/{img}:v1" is "{$image_id}"
    When I run "run --rm {registry}/{img}:v1 cat /pushed.txt"
    Then the output is "pushed-content"

  @spec:registry.push-pull-digest
  Scenario: An image pushed to a registry can be pulled back by digest
    Given I successfully run "tag {busybox} {registry}/{img}:by-digest"
    And I successfully run "push {registry}/{img}:by-digest"
    And I remember the digest the registry holds for "{registry}/{img}:by-digest" as "digest"
    When I successfully run "rmi {registry}/{img}:by-digest"
    And I run "pull {registry}/{img}@{$digest}"
    Then it succeeds
    And the field "RepoDigests" of "{registry}/{img}@{$digest}" contains "{$digest}"

  @spec:registry.layers-skipped
  Scenario: Pushing layers the registry already has skips them
    Given I successfully run "tag {busybox} {registry}/{img}:first"
    And I successfully run "push {registry}/{img}:first"
    And I successfully run "tag {busybox} {registry}/{img}:second"
    When I run "push {registry}/{img}:second"
    Then it succeeds
    And the output contains "exists"

  @spec:registry.login
  Scenario: After logging in to a registry that asks for credentials, push and pull work
    Given an authenticated registry is running
    When I run "login --username {$auth_user} --password-stdin {$auth_registry}" with the scenario's client configuration and the password on stdin
    Then it succeeds
    And the output contains "Login Succeeded"
    And the client configuration holds credentials for "{$auth_registry}"
    When I run "tag {busybox} {$auth_registry}/{img}:v1" with the scenario's client configuration
    And I run "push {$auth_registry}/{img}:v1" with the scenario's client configuration
    Then it succeeds
    When I run "rmi {$auth_registry}/{img}:v1" with the scenario's client configuration
    And I run "pull {$auth_registry}/{img}:v1" with the scenario's client configuration
    Then it succeeds
    When I run "run --rm {$auth_registry}/{img}:v1 echo pulled-after-login" with the scenario's client configuration
    Then the output is "pulled-after-login"

  @spec:registry.login-required
  Scenario: Pulling from a registry that asks for credentials fails without logging in, and says why
    Given the authenticated registry holds the image "busybox" as "{img}:locked"
    When I run "pull {$auth_registry}/{img}:locked" with the scenario's client configuration
    Then it fails
    And the combined output matches "(?i)(no basic auth credentials|unauthorized|authentication required)"
    And the image "{$auth_registry}/{img}:locked" does not exist

  @spec:registry.logout
  Scenario: Logging out removes the stored credentials, and the registry refuses the client again
    Given the authenticated registry holds the image "busybox" as "{img}:kept"
    And I run "login --username {$auth_user} --password-stdin {$auth_registry}" with the scenario's client configuration and the password on stdin
    And it succeeds
    When I run "logout {$auth_registry}" with the scenario's client configuration
    Then it succeeds
    And the client configuration holds no credentials for "{$auth_registry}"
    When I run "pull {$auth_registry}/{img}:kept" with the scenario's client configuration
    Then it fails
