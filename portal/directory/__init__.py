"""Directory services the portal signs people in against: Active Directory / LDAP and Entra ID."""
