// Managed Identity Operator on the pool identity only (not its group): the app may assign that one
// identity to the pools it creates through the management plane, and no other identity.
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/identity#managed-identity-operator
param identityName string
param principalId string

resource poolIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource operator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(poolIdentity.id, principalId, 'f1a07417-d97a-45cb-824c-7a7467783830')
  scope: poolIdentity
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'f1a07417-d97a-45cb-824c-7a7467783830')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
