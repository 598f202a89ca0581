import type { IDataObject, ILoadOptionsFunctions, INodePropertyOptions } from 'n8n-workflow';
import { memrelayRequest } from './transport';

function byName(a: INodePropertyOptions, b: INodePropertyOptions): number {
	return a.name.localeCompare(b.name);
}

/** GET /entities: the org's entity types (value: the slug requests name). */
export async function getEntityTypes(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	const types = (await memrelayRequest.call(this, 'GET', '/entities')) as IDataObject[];
	return types
		.map((t) => ({
			name: String(t.label ?? t.name ?? t.slug),
			value: String(t.slug ?? t.name),
			description: String(t.description ?? ''),
		}))
		.sort(byName);
}

/** GET /collections?type=<entity type>: every property of the type's collections. */
export async function getProperties(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	let entityType = '';
	try {
		entityType = String(this.getCurrentNodeParameter('entityType') ?? '');
	} catch {
		entityType = '';
	}
	const data = (await memrelayRequest.call(
		this,
		'GET',
		'/collections',
		undefined,
		entityType ? { type: entityType } : undefined,
	)) as IDataObject;
	const seen = new Map<string, INodePropertyOptions>();
	for (const collection of (data.collections as IDataObject[]) ?? []) {
		for (const property of (collection.properties as IDataObject[]) ?? []) {
			const name = String(property.propertyName ?? property.name ?? '');
			if (!name || seen.has(name)) continue;
			seen.set(name, {
				name: `${name} (${String(collection.collectionName)})`,
				value: name,
				description: String(property.description ?? property.type ?? ''),
			});
		}
	}
	return [...seen.values()].sort(byName);
}

/** GET /guidelines. */
export async function getGuidelines(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	const data = (await memrelayRequest.call(this, 'GET', '/guidelines')) as IDataObject;
	return ((data.guidelines as IDataObject[]) ?? [])
		.map((g) => ({ name: String(g.name), value: String(g.id) }))
		.sort(byName);
}

/** GET /agents. */
export async function getAgents(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	const data = (await memrelayRequest.call(this, 'GET', '/agents')) as IDataObject;
	return ((data.agents as IDataObject[]) ?? [])
		.map((a) => ({ name: String(a.name), value: String(a.id), description: String(a.description ?? '') }))
		.sort(byName);
}
