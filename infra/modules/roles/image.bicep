// Reader on the gallery image the pool boots from (every version under it), nothing wider.
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/general#reader
param galleryName string
param imageName string
param principalId string

resource gallery 'Microsoft.Compute/galleries@2023-07-03' existing = {
  name: galleryName
}

resource image 'Microsoft.Compute/galleries/images@2023-07-03' existing = {
  parent: gallery
  name: imageName
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(image.id, principalId, 'acdd72a7-3385-48ef-bd42-f606fba81ae7')
  scope: image
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'acdd72a7-3385-48ef-bd42-f606fba81ae7')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
